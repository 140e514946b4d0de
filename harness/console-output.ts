// What a shell command printed on the guest's serial console, as the tests read it. The command is
// typed between two markers the shell prints (`==start`, `==done`); the output is what lies between
// their printed lines, without the kernel's own `[ 12.345678]` lines. Markers, not the echoed
// command line, bound it: a kernel line (CPU hotplug prints them) can land in the middle of the echo
// (a CI run read "o '==''done'" as output that way), and the terminal wraps a long echo.

/** The line to type for `command`: its output bounded by the two markers. */
export function markedCommand(command: string): string {
  return `echo '==''start'; ${command}; echo '==''done'\n`;
}

/** Matches once the console (from where the command was typed) holds the whole marked output. */
export const MARKED_OUTPUT_DONE = /(^|\n)==start\r?\n[^]*==done\r?\n/;

/** `text`: the console from where `markedCommand` was typed, up to and past its end marker. */
export function markedOutput(text: string): string {
  const start = /(^|\n)==start\r?\n/.exec(text);
  if (!start) throw new Error(`no ==start marker in the console text: ${JSON.stringify(text.slice(-300))}`);
  const from = start.index + start[0].length;
  const end = text.lastIndexOf("==done");
  if (end < from) throw new Error(`no ==done marker after ==start in the console text: ${JSON.stringify(text.slice(-300))}`);
  return dropKernelLines(text.slice(from, end));
}

/** `text` without the kernel's `[ 12.345678]` lines (CPU hotplug drops them into a command's output). */
export function dropKernelLines(text: string): string {
  return text
    .split(/\r?\n/)
    .filter((l) => !/^\s*\[\s*\d+\.\d+\]/.test(l))
    .join("\n");
}
