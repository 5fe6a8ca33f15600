/**
 * Cornerstone3D's tools as pacs_lite's viewer uses them: mouse navigation and measurements.
 *
 * `frontend/build.mjs` bundles this file to `static/vendor/cornerstone/cornerstone-tools.js`.
 * The viewer imports it after the first image is drawn (see cornerstone-entry.js):
 *
 *   import { tools } from '/static/vendor/cornerstone/cornerstone-tools.js';
 */
import {
  init,
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
  Enums,
  annotation,
  store,
} from '@cornerstonejs/tools';

/** Cornerstone3D tools: tool groups, navigation and measurement tools. */
export const tools = Object.freeze({
  init,
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
  Enums,
  annotation,
  store,
});
