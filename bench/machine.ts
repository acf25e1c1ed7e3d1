/**
 * What the benchmarks ran on: CPU model, cores, memory, runtime versions, kernel, and
 * how busy the machine was with other work (from /proc/stat).
 *
 * @module
 */

/** A description of the machine. */
export interface MachineInfo {
  /** CPU model name from /proc/cpuinfo. */
  cpu: string;
  /** Logical CPUs. */
  cores: number;
  /** Memory in GiB. */
  memoryGiB: number;
  /** Deno, V8 and TypeScript versions. */
  deno: string;
  /** V8 version. */
  v8: string;
  /** TypeScript version. */
  typescript: string;
  /** Kernel release. */
  kernel: string;
  /** Load averages when the suite started. */
  loadAverage: number[];
  /** The open-file limit of the suite's process (children inherit it). */
  openFileLimit: string;
}

function read(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

/** Collects the machine description. */
export function machineInfo(): MachineInfo {
  const cpuinfo = read("/proc/cpuinfo");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown";
  const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length || navigator.hardwareConcurrency;
  const memKiB = Number(/^MemTotal:\s+(\d+)/m.exec(read("/proc/meminfo"))?.[1] ?? 0);
  const limits = read("/proc/self/limits");
  const files = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  return {
    cpu: model,
    cores,
    memoryGiB: Math.round((memKiB / 1024 / 1024) * 10) / 10,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    kernel: read("/proc/sys/kernel/osrelease").trim(),
    loadAverage: read("/proc/loadavg").split(" ").slice(0, 3).map(Number),
    openFileLimit: files ? `${files[1]} (hard ${files[2]})` : "unknown",
  };
}

/** Total busy CPU seconds of the machine (all CPUs), from /proc/stat. */
export function machineBusySeconds(): number {
  const line = read("/proc/stat").split("\n")[0] ?? "";
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const busy = (v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0) + (v[5] ?? 0) + (v[6] ?? 0) + (v[7] ?? 0);
  return busy / 100;
}

/** The code measured: the commit and the files changed since, in the measured folders. */
export async function codeVersion(): Promise<{ commit: string; uncommitted: string[] }> {
  const run = async (args: string[]) => {
    try {
      const out = await new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).output();
      return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
    } catch {
      return "";
    }
  };
  const commit = await run(["rev-parse", "--short", "HEAD"]);
  const status = await run(["status", "--porcelain", "--", "server", "transport", "protocol"]);
  return {
    commit: commit || "unknown",
    uncommitted: status ? status.split("\n").map((l) => l.slice(3)) : [],
  };
}
