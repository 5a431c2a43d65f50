// One hex digit's value from its character code, for the hand-written parsers.

/** 0-15 for 0-9, a-f, A-F; -1 for anything else. */
export function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}
