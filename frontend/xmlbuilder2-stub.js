/**
 * Stand-in for the `xmlbuilder2` package in the browser bundle.
 *
 * vtk.js imports `xmlbuilder2` only for its XML file readers and writers,
 * which the viewer never uses. The real package drags in Node built-ins
 * (`events`, `url`) that break the browser build, so the build aliases it
 * to this module. Calling it says clearly why it is missing.
 */

/** Refuse to build an XML document: the viewer bundle ships no XML support. */
export function create() {
  throw new Error('xmlbuilder2 is not included in the pacs_lite viewer bundle');
}

export default { create };
