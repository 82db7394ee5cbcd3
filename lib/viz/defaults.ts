/**
 * Layout and style defaults shared by every figure: font, margins, text sizes, PNG zoom and the
 * mask colours, in one place.
 *
 * Text uses DejaVu Sans, bundled in `data/fonts/` (Bitstream Vera licence, see the licence file
 * beside it): resvg draws no text at all without a font, and the same font on every machine
 * keeps PNGs identical across machines.
 *
 * @module
 */

/** Layout and style defaults shared by every figure. */
export const DEFAULTS = {
  /** The font family written into every SVG; resvg resolves it to the bundled file. */
  fontFamily: "DejaVu Sans",
  /**
   * Bundled font, relative to this module: read as a file by the native PNG renderer when this is
   * a `file:` URL, fetched as bytes by the wasm one (so an `https:` copy, e.g. from JSR, works too).
   */
  fontUrl: new URL("../../data/fonts/DejaVuSans.ttf", import.meta.url),
  /** White margin around the whole figure, px. */
  pad: 12,
  /** Title / subtitle / caption / legend font sizes, px. */
  titleSize: 15,
  subtitleSize: 11.5,
  captionSize: 10.5,
  legendSize: 10,
  /** Swatch legend geometry, px. */
  swatchSize: 13,
  swatchRow: 19,
  /** A figure narrower than this widens (up to it) to keep its title and legend on one line. */
  minTextWidth: 440,
  /** PNG zoom: 2 gives crisp text when the image is shown at the SVG's size on a 2x screen. */
  pngScale: 2,
  /** Colours for mask panels: context, then one per target block (cycled), then unused patches. */
  contextColor: "#4269d0",
  targetColors: ["#ff725c", "#efb118", "#3ca951", "#a463f2", "#ff8ab7", "#9c6b4e", "#6cc5b0"],
  unusedColor: "#dcdcdc",
};
