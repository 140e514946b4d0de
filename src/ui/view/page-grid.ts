// Geometry of the page map (pure): which pages a grid cell covers at a zoom, and back.

export interface GridLayout {
  pages: number;
  pagesPerCell: number;
  columns: number;
  rows: number;
  /** Cell edge in CSS pixels, gap included. */
  cellPx: number;
}

export const ZOOMS = [1, 2, 4, 8, 16, 32, 64, 128, 256] as const;

export function layoutGrid(pages: number, pagesPerCell: number, columns = 64, cellPx = 7): GridLayout {
  if (!Number.isInteger(pages) || pages < 1) throw new RangeError(`pages is ${pages}`);
  if (!Number.isInteger(pagesPerCell) || pagesPerCell < 1) throw new RangeError(`pagesPerCell is ${pagesPerCell}`);
  const cells = Math.ceil(pages / pagesPerCell);
  return { pages, pagesPerCell, columns, rows: Math.ceil(cells / columns), cellPx };
}

/** The smallest zoom that shows all of guest RAM in at most `maxRows` rows. */
export function fittingZoom(pages: number, columns = 64, maxRows = 40): number {
  for (const z of ZOOMS) if (Math.ceil(pages / z / columns) <= maxRows) return z;
  return ZOOMS[ZOOMS.length - 1]!;
}

/** Pages [first, end) under CSS pixel (x, y), or null off the grid. */
export function cellAt(g: GridLayout, x: number, y: number): { cell: number; first: number; end: number } | null {
  const col = Math.floor(x / g.cellPx);
  const row = Math.floor(y / g.cellPx);
  if (x < 0 || y < 0 || col >= g.columns || row >= g.rows) return null;
  const cell = row * g.columns + col;
  const first = cell * g.pagesPerCell;
  if (first >= g.pages) return null;
  return { cell, first, end: Math.min(g.pages, first + g.pagesPerCell) };
}
