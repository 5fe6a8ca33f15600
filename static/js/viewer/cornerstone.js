// Load and start Cornerstone3D once for the page: CPU rendering (faster than
// WebGL on the clinics' GPU-less servers and in headless Chromium), the DICOM
// loader with its decode worker and wasm codecs, and the tools the viewer uses.

export const RENDERING_ENGINE_ID = "pacs_lite";
export const TOOL_GROUP_ID = "pacs_lite_tools";

// The tool classes the viewer registers, by their Cornerstone names.
const TOOL_CLASSES = [
  "WindowLevelTool", "ZoomTool", "PanTool", "StackScrollTool",
  "LengthTool", "AngleTool", "RectangleROITool", "EllipticalROITool", "ProbeTool",
];

let startup = null;

/**
 * Import the bundle (its URL as the page preloaded it) and initialise it; the codecs' wasm files are in wasmUrl.
 * `onRequestError(status)` hears every failed image request (401, 404, 502, 0 for no answer).
 * Resolve to the bundle's namespaces {core, tools, dicomImageLoader, dicomParser}; later calls reuse them.
 */
export function startCornerstone(bundleUrl, wasmUrl, onRequestError) {
  if (!startup) startup = start(bundleUrl, wasmUrl, onRequestError);
  return startup;
}

/**
 * Cornerstone 5.14's loadAndCacheImage drops the promise of cache.putImageLoadObject, which rejects
 * again when a load fails: every image that cannot be fetched or decoded would also be an "unhandled
 * rejection". Mark that copy handled; the failure still reaches the viewer through the load's own
 * promise and the IMAGE_LOAD_ERROR event.
 */
function markCacheFailuresHandled(cache) {
  const put = cache.putImageLoadObject.bind(cache);
  cache.putImageLoadObject = (imageId, imageLoadObject) => {
    const cached = put(imageId, imageLoadObject);
    cached.catch(() => {});
    return cached;
  };
}

/**
 * Cornerstone's own scrolling (the wheel) leaves the promise of an image that failed to load unhandled.
 * The viewer shows those failures from the IMAGE_LOAD_ERROR event, which carries the same error just
 * before the promise rejects: keep such an error out of the console as an "unhandled rejection" too.
 * Any other unhandled rejection still shows.
 */
function quietReportedFailures(core) {
  const reported = new Set();
  core.eventTarget.addEventListener(core.Enums.Events.IMAGE_LOAD_ERROR, (event) => {
    const { error } = event.detail;
    reported.add(error);
    setTimeout(() => reported.delete(error), 10_000);
  });
  window.addEventListener("unhandledrejection", (event) => {
    if (reported.has(event.reason)) event.preventDefault();
  });
}

/** Do the work of startCornerstone. */
async function start(bundleUrl, wasmUrl, onRequestError) {
  const cs = await import(bundleUrl);
  const { core, tools, dicomImageLoader } = cs;
  markCacheFailuresHandled(core.cache);
  quietReportedFailures(core);
  core.init({ rendering: { useCPURendering: true } });
  dicomImageLoader.init({
    wasmBasePath: new URL(wasmUrl, window.location.href).href,
    errorInterceptor: (error) => onRequestError(error.status || 0),
  });
  tools.init();
  for (const name of TOOL_CLASSES) tools.addTool(tools[name]);
  return cs;
}
