# Shortcuts for the README's commands (they need no make: see tools/).
.PHONY: all build run run-self-signed test test-fast test-asan lint clean
all: build
build:
	tools/deps.sh build && tools/build.sh build
run:
	./tools/run.sh
run-self-signed:
	./tools/run.sh --self-signed
test:
	./tools/test.sh
test-fast:
	./tools/test.sh fast
test-asan:
	./tools/test.sh asan
lint:
	tools/lint.sh
clean:
	rm -rf build build-asan
