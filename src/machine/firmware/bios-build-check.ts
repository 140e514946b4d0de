// Validation of a firmware image, separate from the builder so browser code can use it.

import { FirmwareError } from "./errors.ts";
import { FW_IMAGE_SIZE } from "./layout.ts";

/** Checks a firmware image: 128 KiB, a far jump at the reset vector (0xFFFF0 = offset 0x1FFF0). */
export function checkFirmwareImage(image: Uint8Array): void {
  if (image.length !== FW_IMAGE_SIZE) throw new FirmwareError(`firmware image is ${image.length} bytes, expected ${FW_IMAGE_SIZE}`);
  if (image[0x1fff0] !== 0xea) throw new FirmwareError("firmware image has no far jump at its reset vector (offset 0x1FFF0)");
}
