// Well-formed UTF-8 (RFC 3629), checked wherever text comes in from outside:
// request bodies, query parameters, and what the PostgreSQL read model stores.
#pragma once

#include <cstddef>
#include <string_view>

namespace orderflow::domain {

// Index of the first byte of `s` that does not start a well-formed UTF-8
// sequence (no overlong forms, no surrogates, nothing above U+10FFFF, no
// truncated sequence), or std::string_view::npos when all of `s` is well formed.
size_t InvalidUtf8At(std::string_view s);

inline bool IsValidUtf8(std::string_view s) { return InvalidUtf8At(s) == std::string_view::npos; }

}  // namespace orderflow::domain
