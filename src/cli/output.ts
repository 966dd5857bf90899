// Printing a command's result: the data as JSON or YAML, or the table built from it.
import { stringify as toYaml } from 'yaml';
import { shouldColour, type OutputFormat } from './format.js';
import type { OutStream } from './io.js';

export class Output {
  /** Colour in tables, on a terminal, unless NO_COLOR says otherwise. */
  readonly colour: boolean;

  constructor(
    readonly format: OutputFormat,
    private readonly stdout: OutStream,
    env: NodeJS.ProcessEnv,
  ) {
    this.colour = format === 'table' && shouldColour(stdout.isTTY, env);
  }

  /** The whole result at once. */
  emit(data: unknown, table: () => string): void {
    if (this.format === 'json') this.stdout.write(JSON.stringify(data, null, 2) + '\n');
    else if (this.format === 'yaml') this.stdout.write(toYaml(data));
    else this.stdout.write(table());
  }

  /** One item of a stream: a JSON line, a YAML document, or the table line. */
  item(data: unknown, line: () => string): void {
    if (this.format === 'json') this.stdout.write(JSON.stringify(data) + '\n');
    else if (this.format === 'yaml') this.stdout.write('---\n' + toYaml(data));
    else this.stdout.write(line() + '\n');
  }
}
