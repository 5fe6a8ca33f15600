/**
 * The one Cornerstone3D module that pacs_lite's viewer pages import.
 *
 * `frontend/build.mjs` bundles this file to `static/vendor/cornerstone/cornerstone.js`.
 * It exposes four namespaces, named as the Cornerstone3D docs name them:
 *
 *   import { core, tools, dicomImageLoader, dicomParser }
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
  version as coreVersion,
} from '@cornerstonejs/core';
import {
  init as toolsInit,
  addTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
  PanTool,
  StackScrollTool,
  LengthTool,
  AngleTool,
  RectangleROITool,
  EllipticalROITool,
  ProbeTool,
  Enums as ToolsEnums,
  annotation,
} from '@cornerstonejs/tools';
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
  version: coreVersion,
});

/** Cornerstone3D tools: tool groups, navigation and measurement tools. */
export const tools = Object.freeze({
  init: toolsInit,
  addTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
  PanTool,
  StackScrollTool,
  LengthTool,
  AngleTool,
  RectangleROITool,
  EllipticalROITool,
  ProbeTool,
  Enums: ToolsEnums,
  annotation,
});

/** The DICOM image loader: `init` (worker, wasm path) and the `wadouri:` scheme helpers. */
export const dicomImageLoader = Object.freeze({
  init: loaderInit,
  wadouri,
});

/** dicom-parser, the same copy the loader uses (for reading tags of a loaded data set). */
export const dicomParser = dicomParserModule;
