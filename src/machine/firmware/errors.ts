// One error type for every firmware input problem, so callers can tell "bad configuration or
// kernel image" apart from emulator failures.

export class FirmwareError extends Error {
  override name = "FirmwareError";
}

export function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new FirmwareError(message);
}
