// Wait for an asynchronous outcome without fixed sleeps: retry an assertion until it holds.
import assert from 'node:assert';

export async function eventually(
  check: () => void | Promise<void>,
  { timeoutMs = 15_000, intervalMs = 20 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      // Assertions are checked with node:assert so a failing attempt does not fail the ava test.
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export { assert };
