#!/usr/bin/env bash
# Installs orderflow's build and run dependencies from Debian 12's packages.
# Idempotent: packages already present are skipped; safe to run on every build.
set -euo pipefail

packages=(
  cmake ninja-build ccache pkg-config g++
  librdkafka-dev
  librocksdb-dev
  capnproto libcapnp-dev
  libboost-program-options-dev
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev
  nlohmann-json3-dev libssl-dev libboost-dev
  libjemalloc-dev libxxhash-dev
  libcpp-httplib-dev prometheus-cpp-dev
  libpqxx-dev postgresql
  chromium libnss3-tools wrk
  clang libclang-rt-14-dev
  openjdk-17-jre-headless maven
  openssl kcat
  python3-venv
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Java and Maven run Apache Kafka (scripts/kafka.sh). A machine with its own
# JDK and Maven (another vendor's, on the PATH) keeps them.
command -v java >/dev/null && missing=("${missing[@]/openjdk-17-jre-headless/}")
command -v mvn >/dev/null && missing=("${missing[@]/maven/}")
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | grep -v '^$' || true)

# Node.js and npm for the browser test (playwright-core). A machine that has
# them from elsewhere (NodeSource) keeps them; Debian's npm conflicts with those.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

if ((${#missing[@]} == 0)); then
  echo "setup: all packages present"
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
