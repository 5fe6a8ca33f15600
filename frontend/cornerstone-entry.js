/**
 * The part of Cornerstone3D that pacs_lite's viewer needs to draw an image.
 *
 * `frontend/build.mjs` bundles this file to `static/vendor/cornerstone/cornerstone.js`,
 * and `cornerstone-tools-entry.js` to `cornerstone-tools.js` beside it; code the
 * two share (Cornerstone's core) goes to a `chunk-<hash>.js` both import. The
 * viewer imports this module first, and the tools once the first image is on
 * screen, so a page load compiles and runs only what the first image needs
 * before drawing it. It exposes three namespaces, named as the Cornerstone3D
 * docs name them:
 *
 *   import { core, dicomImageLoader, dicomParser }
 *     from '/static/vendor/cornerstone/cornerstone.js';
 *
 * Only what a stack viewer needs is listed, so esbuild can drop the rest
 * (volume rendering, segmentation, ...). Add a name here when a page needs it.
 */
import {
  RenderingEngine,
  Enums as CoreEnums,
  init as coreInit,
  isCornerstoneInitialized,
  metaData,
  imageLoader,
  cache,
  utilities as coreUtilities,
  eventTarget,
  getRenderingEngine,
  getEnabledElement,
  setUseCPURendering,
  getShouldUseCPURendering,
  getConfiguration,
  setConfiguration,
  getWebWorkerManager,
  version as coreVersion,
} from '@cornerstonejs/core';
import {
  init as loaderInit,
  wadouri,
} from '@cornerstonejs/dicom-image-loader';
import dicomParserModule from 'dicom-parser';

/** Cornerstone3D core: rendering engine, viewports, loaders, cache. */
export const core = Object.freeze({
  RenderingEngine,
  Enums: CoreEnums,
  init: coreInit,
  isCornerstoneInitialized,
  metaData,
  imageLoader,
  cache,
  utilities: coreUtilities,
  eventTarget,
  getRenderingEngine,
  getEnabledElement,
  setUseCPURendering,
  getShouldUseCPURendering,
  getConfiguration,
  setConfiguration,
  getWebWorkerManager,
  version: coreVersion,
});

/** The DICOM image loader: `init` (worker, wasm path) and the `wadouri:` scheme helpers. */
export const dicomImageLoader = Object.freeze({
  init: loaderInit,
  wadouri,
});

/** dicom-parser, the same copy the loader uses (for reading tags of a loaded data set). */
export const dicomParser = dicomParserModule;
