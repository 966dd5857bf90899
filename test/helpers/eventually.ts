// Wait for an asynchronous outcome without fixed sleeps: retry an assertion until it holds.
import nodeAssert from 'node:assert';

/**
 * node:assert, except that ok() without a message does not build one from the test's source:
 * node parses the whole (transpiled) file with acorn for it, and inside eventually() a failing
 * check runs every 20 ms. On a large test file each parse took seconds: the worker spun at
 * 100 % CPU and the test timed out with the awaited events sitting unread.
 */
function ok(value: unknown, message?: string | Error): asserts value {
  nodeAssert.ok(value, message ?? 'expected a truthy value');
}

export const assert: typeof nodeAssert = Object.assign(Object.create(nodeAssert) as typeof nodeAssert, { ok });

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
