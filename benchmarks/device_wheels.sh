#!/usr/bin/env bash
# Wheels of the packages dplearn needs that a bare CUDA machine's Python 3.12 image may lack
# (pymunk and its cffi, gymnasium), downloaded here into .whl/ so that a GPU run can install them
# offline:
#   bash benchmarks/device_wheels.sh            # once, on a machine with PyPI
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=/tmp/site:src        # on the GPU machine, before the benchmark script
# Versions are those dplearn is tested with; .whl/ is not committed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY_VERSION="${PY_VERSION:-3.12}"
mkdir -p .whl
for spec in pymunk==7.3.1 cffi==2.1.1 pycparser==3.12 gymnasium==1.4.0 farama-notifications==0.0.6 \
            cloudpickle==3.1.3; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "$spec"
done
ls -1 .whl
