// The WHATWG Encoding API, the one host API the pure layers (protocol/, machine/) use: every host
// we run on (browsers, their workers, Node.js) has it, yet TypeScript declares it only in its DOM,
// WebWorker and Node typings, which those layers must not see. Just what they call.

interface TextEncoder {
  encode(input?: string): Uint8Array;
}
declare var TextEncoder: { new (): TextEncoder };

interface TextDecoderOptions {
  fatal?: boolean;
  ignoreBOM?: boolean;
}
interface TextDecoder {
  decode(input?: ArrayBufferView | ArrayBuffer, options?: { stream?: boolean }): string;
}
declare var TextDecoder: { new (label?: string, options?: TextDecoderOptions): TextDecoder };
