// Reading attributes straight from a loaded image's own data set, for the few
// values Cornerstone's metadata modules fill with defaults when a file lacks them.

/** Return the naturalized data set ({SliceLocation: ..., ...}) of a loaded image, or null. */
function dataSetOf(cs, imageId) {
  try {
    const image = cs.core.cache.getImage(imageId);
    return image && image.data && typeof image.data === "object" ? image.data : null;
  } catch {
    return null;
  }
}

/** Return value number `index` of an attribute (by DICOM keyword), or undefined when absent. */
function valueOf(cs, imageId, keyword, index) {
  const dataSet = dataSetOf(cs, imageId);
  if (!dataSet) return undefined;
  const value = dataSet[keyword];
  if (Array.isArray(value)) return value[index];
  return index === 0 ? value : undefined;
}

/** Return a numeric attribute's value as a number, or null when the file lacks it. */
export function tagNumber(cs, imageId, keyword, index = 0) {
  const value = valueOf(cs, imageId, keyword, index);
  if (value === undefined || value === null || value === "") return null;
  const number = Number(value);
  return Number.isFinite(number) ? number : null;
}

/** Return a text attribute's value, trimmed, or "". */
export function tagText(cs, imageId, keyword, index = 0) {
  const value = valueOf(cs, imageId, keyword, index);
  return value === undefined || value === null ? "" : String(value).trim();
}
