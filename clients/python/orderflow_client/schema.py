"""Loads orderflow's Cap'n Proto schemas at run time with pycapnp.

The schemas are the contract: this package carries no generated code, it
parses the repository's `schemas/events.capnp` (the current version) and, on
request, a frozen older version under `schemas/frozen/vN/` (to write records as
old code did, e.g. in tests). Each version gets its own `capnp.SchemaParser`:
the frozen copies share the current file's id, so one parser cannot hold both.
"""

import os
import threading

import capnp

CURRENT_SCHEMA_VERSION = 2
"""The Envelope.schemaVersion that schemas/events.capnp describes (domain::kCurrentSchemaVersion)."""

_lock = threading.Lock()
_loaded = {}


def default_schema_dir():
    """$ORDERFLOW_SCHEMA_DIR, else the repository's schemas/ next to clients/python/."""
    env = os.environ.get("ORDERFLOW_SCHEMA_DIR")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "..", "schemas"))


def _capnp_include_dir():
    # pycapnp ships capnp/c++.capnp (which events.capnp imports) inside its package.
    return os.path.dirname(os.path.dirname(os.path.abspath(capnp.__file__)))


def load_events_schema(version=None, schema_dir=None):
    """The events.capnp module of `version` (None or CURRENT_SCHEMA_VERSION: the
    current file; an older number: schemas/frozen/v<version>/events.capnp).
    Loaded once per (directory, version) and cached."""
    schema_dir = os.path.abspath(schema_dir or default_schema_dir())
    if version is None or version == CURRENT_SCHEMA_VERSION:
        path = os.path.join(schema_dir, "events.capnp")
        version = CURRENT_SCHEMA_VERSION
    else:
        path = os.path.join(schema_dir, "frozen", "v%d" % version, "events.capnp")
    key = (path, version)
    with _lock:
        module = _loaded.get(key)
        if module is None:
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    "no schema for version %d at %s (set ORDERFLOW_SCHEMA_DIR to orderflow's schemas/ directory)"
                    % (version, path))
            # A parser of its own per version: the frozen copies reuse the file id.
            module = capnp.SchemaParser().load(path, imports=[_capnp_include_dir()])
            _loaded[key] = module
        return module


def payload_fields(module):
    """The Envelope.payload union's member names, in ordinal order ("orderPlaced", ...)."""
    return list(module.Envelope.new_message().payload.schema.union_fields)
