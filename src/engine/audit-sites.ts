// The coherence audit's site table (built by instrument/audit-pass.ts, read by the Vcpu at run
// time): which v86 function each instrumented memory access belongs to. No Node or binaryen imports,
// so the engine stays loadable in a browser worker.

export interface AuditReport {
  /** Memory accesses instrumented (loads, stores, SIMD lanes, bulk copies and fills). */
  sites: number;
  /** [first site number, v86 function name] in increasing order: site s belongs to the last entry with first <= s. */
  functions: [number, string][];
}

/** The v86 function a site number belongs to. */
export function auditSiteFunction(report: AuditReport, site: number): string {
  let lo = 0;
  let hi = report.functions.length - 1;
  if (hi < 0 || site < report.functions[0][0]) return `site ${site}`;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (report.functions[mid][0] <= site) lo = mid;
    else hi = mid - 1;
  }
  return report.functions[lo][1];
}
