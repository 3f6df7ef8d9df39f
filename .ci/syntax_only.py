#!/usr/bin/env python3
"""Compiles every translation unit of a configured CMake build with
-fsyntax-only: the front end's warnings and errors, no code generation.

    syntax_only.py BUILD_DIR [JOBS]

BUILD_DIR must have been configured with CMAKE_EXPORT_COMPILE_COMMANDS=ON.
Used for the C++20 builds: clang emits all of its warnings from the front
end, and g++'s optimiser warnings are checked by the C++17 -O2 builds.
About half the time of a full build.
"""
import json
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor


def syntax_only(command):
    args = shlex.split(command)
    out = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in ("-o", "-MT", "-MF"):
            skip = True
            continue
        if arg in ("-MD", "-MMD", "-c"):
            continue
        out.append(arg)
    return out + ["-fsyntax-only"]


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: syntax_only.py BUILD_DIR [JOBS]")
    build_dir = sys.argv[1]
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    try:
        with open(f"{build_dir}/compile_commands.json") as f:
            entries = json.load(f)
    except OSError as error:
        sys.exit(f"syntax_only.py: {error} (configure with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)")
    if not entries:
        sys.exit("syntax_only.py: compile_commands.json lists no translation unit")

    def check(entry):
        result = subprocess.run(syntax_only(entry["command"]), cwd=entry["directory"],
                                capture_output=True, text=True)
        return entry["file"], result

    failed = 0
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for path, result in pool.map(check, entries):
            output = result.stdout + result.stderr
            if result.returncode != 0 or output.strip():
                failed += 1
                print(f"--- {path}\n{output}", flush=True)
    print(f"{len(entries)} translation units, {failed} with errors or warnings")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
