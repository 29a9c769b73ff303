#!/usr/bin/env bash
# Builds the function's code into deploy/build/ for `sam build`: the three
# distributions and their dependencies as wheels for Lambda (Linux x86_64,
# CPython 3.12), the policy as build/policy.yaml (a policy set with the .yaml
# files of its folder, which its routes name), and, when given, a candidate
# policy to shadow as build/candidate.yaml (deploy with ShadowPolicyFile=candidate.yaml).
# Usage: deploy/build.sh [POLICY [CANDIDATE]]   (default: policies/general-ugc.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
policy="${1:-policies/general-ugc.yaml}"
candidate="${2:-}"
python -m policy_engine validate "$policy" ${candidate:+"$candidate"}
rm -rf deploy/build deploy/.wheels
python -m pip wheel -q --no-deps -w deploy/.wheels ./ ./plugins/rekognition ./plugins/aws-lambda
python -m pip install -q --target deploy/build --find-links deploy/.wheels \
    --platform manylinux2014_x86_64 --implementation cp --python-version 3.12 \
    --only-binary=:all: deploy/.wheels/*.whl   # the local wheels by path: never a same-named package from an index
if python -c 'import sys; from policy_engine.policy_set import is_policy_set_file as s; sys.exit(not s(sys.argv[1]))' "$policy"; then
    # a policy set: the policies it routes to (and their bases) are read beside it
    cp "$(dirname "$policy")"/*.yaml deploy/build/
fi
cp "$policy" deploy/build/policy.yaml
if [ -n "$candidate" ]; then cp "$candidate" deploy/build/candidate.yaml; fi
rm -rf deploy/.wheels
echo "built deploy/build with policy $policy"
