# The two commands of the README's Quick start, and what they build on.
#   make run    install what is missing, build, start the server
#   make test   install what is missing, build, run every test (ctest)
# SANITIZE=1 builds into build-asan/ with AddressSanitizer and UBSan.

BUILD_DIR := $(if $(SANITIZE),build-asan,build)
CMAKE_FLAGS := $(if $(SANITIZE),-DNC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug,)
JOBS := $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build run test clean

all: build

# Debian packages the build and the tests need. Installed only when some
# are missing, so a ready machine needs neither root nor the network.
PACKAGES := build-essential cmake pkg-config libuv1-dev libwslay-dev \
  liblua5.4-dev libsqlite3-dev node-llhttp lua5.4 lua-cjson lua-busted lua-sql-sqlite3 lua-expat libssl-dev \
  python3 python3-websockets
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

deps:
	@missing=$$(for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/ncserver $(ARGS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf build build-asan
