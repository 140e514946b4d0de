import type { VmStatus } from "./vm-session.ts";

const mib = (n: number) => (n / 1048576).toFixed(1);

/** The status line's words for a VM status. */
export function statusText(status: VmStatus): string {
  switch (status.phase) {
    case "idle":
      return "Ready. Press Boot to start a VM with one vCPU.";
    case "fetching":
      return status.total
        ? `Fetching the ${status.file}: ${mib(status.loaded)} of ${mib(status.total)} MiB`
        : `Fetching the ${status.file}: ${mib(status.loaded)} MiB`;
    case "booting":
      return "Booting…";
    case "running":
      return "Running: the guest's shell is ready; type in the console.";
    case "stopped":
      return "Stopped.";
    case "error":
      // A node failure already says what happened to the VM ("VM stopped: node 1 (vCPU 1) failed: ...").
      return status.message.startsWith("VM stopped: ") ? status.message : `Error: ${status.message}`;
  }
}
