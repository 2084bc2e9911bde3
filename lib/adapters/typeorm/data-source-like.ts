/**
 * What the package uses of a TypeORM DataSource; any DataSource of typeorm 0.3 or later is one. The package's
 * own type rather than typeorm's, so that its published declarations compile where typeorm is not installed.
 */
export interface DataSourceLike {
  /**
   * Its connection options: `type` names the driver; `extra` goes to the driver's pool; `url` and `password`
   * hold credentials, which the package removes from everything it shows.
   */
  readonly options: { readonly type: string; readonly extra?: unknown; readonly url?: unknown; readonly password?: unknown };
  readonly isInitialized: boolean;
  /** TypeORM's driver: its pool and client are reached through it, by driver. */
  readonly driver: unknown;
  initialize(): Promise<unknown>;
  destroy(): Promise<void>;
  query(query: string): Promise<unknown>;
  setOptions(options: { extra?: unknown }): unknown;
}
