// What a shell command printed on the guest's serial console, as the tests read it: the text
// between the echoed command line and the end marker, without the kernel's own `[ 12.345678]`
// lines, which CPU hotplug messages drop into the middle of a command's output.

/** `text`: the console from where the command was typed up to its end marker (excluded). */
export function commandOutput(text: string): string {
  return text
    .slice(text.indexOf("\n") + 1)
    .split(/\r?\n/)
    .filter((l) => !/^\s*\[\s*\d+\.\d+\]/.test(l))
    .join("\n");
}
