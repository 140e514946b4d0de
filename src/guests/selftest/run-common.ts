// What the v86 and QEMU runners share: serial bytes to text, and knowing when the guest is done.

export interface SelftestRun {
  /** Everything the guest (and firmware before it) printed on COM1, "\r" removed. */
  output: string;
  /** Wall-clock seconds from starting the emulator to the SUMMARY line. */
  seconds: number;
}

/** A run that did not finish; `output` is what was printed so far, for the failure message. */
export class SelftestRunError extends Error {
  override name = "SelftestRunError";
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(output ? `${message}\n--- guest output so far ---\n${output.slice(-4000)}` : message);
  }
}

/** Collects serial output and calls onSummary once the SUMMARY line is complete. */
export class SerialLineCollector {
  private chunks: string[] = [];
  private line = "";
  private done = false;
  onSummary: (() => void) | undefined;

  constructor(private readonly onLine?: (line: string) => void) {}

  push(byte: number): void {
    this.pushText(String.fromCharCode(byte));
  }

  pushText(text: string): void {
    for (const ch of text) {
      if (ch === "\r") continue;
      this.chunks.push(ch);
      if (ch !== "\n") {
        this.line += ch;
        continue;
      }
      const line = this.line;
      this.line = "";
      this.onLine?.(line);
      // SeaBIOS clears the screen with escape sequences, so match the line's tail
      if (!this.done && /(^|[^A-Za-z])SUMMARY pass=\d+ fail=\d+ skip=\d+ cpus=\d+$/.test(line)) {
        this.done = true;
        this.onSummary?.();
      }
    }
  }

  get finished(): boolean {
    return this.done;
  }

  text(): string {
    return this.chunks.join("");
  }
}
