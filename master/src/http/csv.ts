/** CSV answers (RFC 4180): a header row, CRLF line ends, fields quoted when they must be. */
import type { Response } from 'express';

export type CsvValue = string | number | boolean | undefined;

/**
 * One field: quoted when it holds a comma, a quote, CR or LF (quotes doubled).
 * Text a spreadsheet would run as a formula (= + - @ first) gets a leading `'`.
 */
export function csvField(value: CsvValue): string {
  if (value === undefined) return '';
  const text =
    typeof value === 'string' && /^[=+\-@\t\r]/.test(value) ? `'${value}` : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The rows under a header of `columns`, each row's values in the columns' order. */
export function toCsv<T>(columns: readonly (keyof T & string)[], rows: readonly T[]): string {
  const lines = [columns.map(csvField).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvField(row[c] as CsvValue)).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** Sends `text` as a CSV file download named `filename`. */
export function sendCsv(res: Response, filename: string, text: string): void {
  res.setHeader('Content-Type', 'text/csv; charset=utf-8');
  res.setHeader('Content-Disposition', `attachment; filename="${filename}"`);
  res.send(text);
}
