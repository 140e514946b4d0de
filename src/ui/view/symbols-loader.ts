// Fetches a System.map for the page map's hover and the hot-page list. A missing map is normal
// (Debian ships only a stub), so the result says why instead of throwing.

import { SymbolTable } from "../../guests/symbols/system-map.ts";

export type SymbolsResult = { ok: true; table: SymbolTable } | { ok: false; error: string };

export async function loadSymbols(url: string): Promise<SymbolsResult> {
  try {
    const res = await fetch(url);
    if (!res.ok) return { ok: false, error: `${url}: HTTP ${res.status}` };
    return { ok: true, table: SymbolTable.fromSystemMap(await res.text()) };
  } catch (err) {
    return { ok: false, error: `${url}: ${(err as Error).message}` };
  }
}
