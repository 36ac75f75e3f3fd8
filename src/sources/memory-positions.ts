/** A PositionStore kept in memory: for tests, benchmarks and `replay` runs that keep no state. */
import type { FilePosition, PositionStore } from './source.js';

export class MemoryPositionStore implements PositionStore {
  readonly #files = new Map<string, FilePosition>();
  readonly #cursors = new Map<string, string>();

  getFile(path: string): FilePosition | undefined {
    return this.#files.get(path);
  }
  setFile(pos: FilePosition): void {
    this.#files.set(pos.path, { ...pos });
  }
  getCursor(id: string): string | undefined {
    return this.#cursors.get(id);
  }
  setCursor(id: string, cursor: string): void {
    this.#cursors.set(id, cursor);
  }
  listFiles(): Iterable<FilePosition> {
    return [...this.#files.values()];
  }
}
