/** Renders a GitHub-flavoured Markdown table; columns marked 'r' (numbers) are right-aligned. */
export function markdownTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>, align: readonly ('l' | 'r')[] = []): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  const escape = (cells: readonly string[]) => cells.map((cell) => cell.replace(/\|/g, '\\|'));
  const rule = headers.map((_, i) => (align[i] === 'r' ? '---:' : '---'));
  return [line(escape(headers)), line(rule), ...rows.map((row) => line(escape(row)))].join('\n');
}
