/**
 * A store refuses a database whose schema is newer than this build knows (a newer aigov migrated
 * it): writing with the older code could corrupt what the newer one relies on. Both drivers throw it.
 */
export class SchemaTooNewError extends Error {
  readonly found: number;
  readonly supported: number;
  constructor(found: number, supported: number) {
    super(`the database has schema version ${found}, written by a newer aigov; this aigov supports up to version ${supported}`);
    this.name = 'SchemaTooNewError';
    this.found = found;
    this.supported = supported;
  }
}
