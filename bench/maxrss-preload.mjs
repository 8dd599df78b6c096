// Fallback peak-RSS probe for bench/run.mjs when /usr/bin/time is absent:
// loaded with `node --import ./bench/maxrss-preload.mjs`, it writes the
// process's peak resident set size (KiB, from getrusage) and its user and
// system CPU seconds to $BENCH_RSS_FILE at exit.
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_RSS_FILE;
if (file) {
  process.on('exit', () => {
    try {
      const u = process.resourceUsage();
      writeFileSync(file, `${u.maxRSS} ${u.userCPUTime / 1e6} ${u.systemCPUTime / 1e6}`);
    } catch {
      // best effort: a missing figure is reported as such
    }
  });
}
