# The two commands of the README's Quick start, and what they build on.
#   make run    install what is missing, build, start the server
#   make test   install what is missing, build, run every test (ctest)
# SANITIZE=1 builds into build-asan/ with AddressSanitizer and UBSan.

BUILD_DIR := $(if $(SANITIZE),build-asan,build)
CMAKE_FLAGS := -DNC_WERROR=ON $(if $(SANITIZE),-DNC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug,)
JOBS := $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps deps-run build build-server run test clean

all: build

# Debian packages, installed only when some are missing, so a ready
# machine needs neither root nor the network. `make run` installs what the
# server needs to build and run; `make test` adds what the tests run on.
# chromium and Node.js (nodejs, npm) are for the browser test; a node
# already on the PATH is used as it is (Debian's npm would not install
# beside a Node.js from elsewhere).
RUN_PACKAGES := build-essential cmake pkg-config libuv1-dev libwslay-dev \
  liblua5.4-dev libsqlite3-dev node-llhttp libssl-dev lua-cjson lua-expat
TEST_PACKAGES := $(RUN_PACKAGES) lua5.4 lua-busted lua-sql-sqlite3 \
  python3 python3-websockets chromium \
  $(if $(shell command -v node 2>/dev/null),,nodejs npm)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# The browser test's npm packages (tests/browser/package-lock.json), the
# only thing fetched from npm: installed again only when the lock file is
# newer than the last install (npm ci writes node_modules/.package-lock.json).
BROWSER_DIR := tests/browser
BROWSER_STAMP := $(BROWSER_DIR)/node_modules/.package-lock.json

# $(call install,packages)
define install
	@missing=$$(for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
endef

deps-run:
	$(call install,$(RUN_PACKAGES))

deps:
	$(call install,$(TEST_PACKAGES))
	@if [ ! -f $(BROWSER_STAMP) ] || [ $(BROWSER_DIR)/package-lock.json -nt $(BROWSER_STAMP) ]; then \
	  echo "installing: npm packages of $(BROWSER_DIR)"; \
	  cd $(BROWSER_DIR) && npm ci --no-audit --no-fund --loglevel=error; \
	fi

# The server alone: the tests' tools may be missing (tests/CMakeLists.txt
# then registers a failing test that names each one).
build-server: deps-run
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j $(JOBS) --target ncserver

build: deps
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build-server
	$(BUILD_DIR)/ncserver $(ARGS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf build build-asan
