/**
 * Stand-in for the JPEG-XL codec (`@cornerstonejs/codec-libjxl`) in the decode worker.
 *
 * The default build leaves JPEG-XL out (see build.mjs). Should a JPEG-XL
 * image ever arrive, decoding it fails with this message instead of a
 * failed fetch of a missing .wasm file.
 */

/** Refuse to start the codec: it is not part of this build. */
export default function jpegxlFactory() {
  return Promise.reject(new Error(
    'JPEG-XL images are not supported by this build (rebuild with: node frontend/build.mjs --with-jpeg-xl)',
  ));
}
