#!/usr/bin/env bash
# Fails when a C source differs from what .clang-format makes of it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null 2>&1; then
    echo "format-check: clang-format not installed, skipped"
    exit 0
fi
clang-format --dry-run -Werror src/*.c src/*.h
echo "format-check: src/ matches .clang-format"
