#!/usr/bin/env bash
# Builds the function's code into deploy/build/ for `sam build`: the three
# distributions and their dependencies as wheels for Lambda (Linux, CPython
# 3.12, on the instruction set ARCHITECTURE names: x86_64, the default, or
# arm64; deploy with the same Architecture parameter), the policy as build/policy.yaml (a policy set with the .yaml
# files of its folder, which its routes name), and, when given, a candidate
# policy to shadow as build/candidate.yaml (deploy with ShadowPolicyFile=candidate.yaml).
# Usage: [ARCHITECTURE=arm64] deploy/build.sh [POLICY [CANDIDATE]]
#        (default: x86_64, policies/general-ugc.yaml)
set -euo pipefail
architecture="${ARCHITECTURE:-x86_64}"
case "$architecture" in  # the template's Architecture parameter, and its wheels' platform
    x86_64) platform=manylinux2014_x86_64 ;;
    arm64) platform=manylinux2014_aarch64 ;;
    *) echo "ARCHITECTURE must be x86_64 or arm64, got '$architecture'" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
policy="${1:-policies/general-ugc.yaml}"
candidate="${2:-}"
python -m policy_engine validate "$policy" ${candidate:+"$candidate"}
rm -rf deploy/build deploy/.wheels
python -m pip wheel -q --no-deps -w deploy/.wheels ./ ./plugins/rekognition ./plugins/aws-lambda
python -m pip install -q --target deploy/build --find-links deploy/.wheels \
    --platform "$platform" --implementation cp --python-version 3.12 \
    --only-binary=:all: deploy/.wheels/*.whl   # the local wheels by path: never a same-named package from an index
if python -c 'import sys; from policy_engine.policy_set import is_policy_set_file as s; sys.exit(not s(sys.argv[1]))' "$policy"; then
    # a policy set: the policies it routes to (and their bases) are read beside it
    cp "$(dirname "$policy")"/*.yaml deploy/build/
fi
cp "$policy" deploy/build/policy.yaml
if [ -n "$candidate" ]; then cp "$candidate" deploy/build/candidate.yaml; fi
rm -rf deploy/.wheels
echo "built deploy/build for $architecture with policy $policy (deploy with Architecture=$architecture)"
