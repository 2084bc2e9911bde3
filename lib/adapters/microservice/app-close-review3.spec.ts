import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { recordAppClose } from './app-close.js';
import type { ClientProxyLike } from './client-proxy-like.js';

/**
 * Review 3: an app's Jest tests spying on its ClientProxy's close() before app.init(), the package's recording put
 * over the spy. `jestSpyOn` is jest-mock's ModuleMocker.spyOn for a plain method, to the letter: the mock assigned
 * over the method (`object[name] = mock`), and restore (mockRestore, jest.restoreAllMocks, restoreMocks: true)
 * `object[name] = original` if the object owned the method when spied, else `delete object[name]`.
 */
function jestSpyOn(object: Record<string, unknown>, name: string) {
  const original = object[name] as (...args: unknown[]) => unknown;
  const isMethodOwner = Object.prototype.hasOwnProperty.call(object, name);
  const calls: unknown[][] = [];
  const mock = Object.assign(
    function (this: unknown, ...args: unknown[]) {
      calls.push(args);
      return original.apply(this, args);
    },
    { _isMockFunction: true, mock: { calls } },
  );
  object[name] = mock;
  const mockRestore = () => {
    if (isMethodOwner) object[name] = original;
    else delete object[name];
  };
  return { mock, calls, mockRestore };
}
/** jest's expect(x).toHaveBeenCalled() first asks this of x (else "received value must be a mock or spy function"). */
const isMockFunction = (fn: unknown) => (fn as { _isMockFunction?: unknown } | undefined)?._isMockFunction === true;

class Proxy {
  connect = () => Promise.resolve();
  unwrap = () => ({}) as never;
  send = () => undefined;
  emit = () => undefined;
  close(): string {
    return 'closed';
  }
}
const asProxy = (proxy: object) => proxy as unknown as ClientProxyLike;

describe('review 3: recordAppClose under an app\'s jest.spyOn(client, "close") made before app.init()', () => {
  it('expect(client.close).toHaveBeenCalled() still reads a mock once the package records', () => {
    const client = new Proxy();
    const spy = jestSpyOn(client as unknown as Record<string, unknown>, 'close');
    recordAppClose(asProxy(client)); // app.init(): the package's adapter is built
    client.close();
    assert.equal(spy.calls.length, 1, 'the spy ran (through the recording)');
    assert.ok(isMockFunction(client.close), "client.close is the package's recording, not the app's spy: jest's toHaveBeenCalled() throws 'received value must be a mock or spy function'");
  });

  it("jest.restoreAllMocks() restores the class's close(): nothing of the package's is left on the proxy, or removed by it", () => {
    const client = new Proxy();
    const spy = jestSpyOn(client as unknown as Record<string, unknown>, 'close');
    const appClose = recordAppClose(asProxy(client));
    spy.mockRestore(); // restoreMocks: true, between two tests of the same app
    assert.equal(Object.prototype.hasOwnProperty.call(client, 'close'), false, 'the proxy owns no close: its class\'s runs');
    client.close();
    // A close the app owned when the package came is the app's: not recorded (it reads as a loss), never shadowed.
    assert.equal(appClose.closed(), false);
    appClose.stop();
    assert.equal(Object.prototype.hasOwnProperty.call(client, 'close'), false);
  });
});
