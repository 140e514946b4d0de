// The contract every benchmark module follows (see ARCHITECTURE.md, "Benchmarks").
// A module lives in bench/metrics/<name>.ts and default-exports a BenchModule;
// bench/run.ts discovers the folder, so adding a module needs no other edit.

export interface Metric {
  value: number;
  unit: string;
  note?: string;
}

export type Metrics = Record<string, Metric>;

export interface BenchContext {
  /** True when the metric name is wanted (`npm run bench -- --only <prefix>`). */
  wants(metricName: string): boolean;
  /**
   * Stock v86, one CPU, default Linux guest, seconds from start to shell prompt.
   * Measured once per run and shared, so every ratio is taken side by side.
   */
  stockBootSeconds(): Promise<number>;
  /** Progress line on stderr (the table and JSON go to stdout). */
  log(message: string): void;
}

export interface BenchModule {
  /** Metric-name prefixes this module can produce, e.g. ["engine."]; used to skip it under --only. */
  prefixes: string[];
  run(ctx: BenchContext): Promise<Metrics>;
}
