import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { recordAppClose } from './app-close.js';
import type { ClientProxyLike } from './client-proxy-like.js';

/** A stand-in of a ClientProxy class: close() lives on the prototype, as on Nest's. */
class Proxy {
  readonly calls: unknown[][] = [];
  connect = () => Promise.resolve();
  unwrap = () => ({}) as never;
  send = () => undefined;
  emit = () => undefined;
  close(...args: unknown[]): string {
    this.calls.push(args);
    return 'closed';
  }
}
const asProxy = (proxy: object) => proxy as unknown as ClientProxyLike;

describe('recordAppClose', () => {
  it("notes the app's close() and runs the proxy's own, with its this, arguments and result", () => {
    const proxy = new Proxy();
    const appClose = recordAppClose(asProxy(proxy));
    assert.equal(appClose.closed(), false);
    assert.equal(proxy.close('why'), 'closed');
    assert.deepEqual(proxy.calls, [['why']]);
    assert.equal(appClose.closed(), true);
    appClose.reopened();
    assert.equal(appClose.closed(), false);
  });

  it("runs the class's close() as it is at the call: a spy put on the class later sees it", () => {
    const proxy = new Proxy();
    recordAppClose(asProxy(proxy));
    const original = Proxy.prototype.close;
    let spied = 0;
    Proxy.prototype.close = function (this: Proxy, ...args: unknown[]) {
      spied++;
      return original.apply(this, args);
    };
    try {
      proxy.close();
      assert.equal(spied, 1);
    } finally {
      Proxy.prototype.close = original;
    }
  });

  it("stop() gives the proxy back its class's close(), and leaves a close() the app put later", () => {
    const plain = new Proxy();
    recordAppClose(asProxy(plain)).stop();
    assert.equal(Object.hasOwn(plain, 'close'), false);

    const later = new Proxy();
    const stopping = recordAppClose(asProxy(later));
    const appLater = () => 'later';
    later.close = appLater;
    stopping.stop();
    assert.equal(later.close, appLater);
  });

  it('one recording per proxy, whatever the connections watching it: each hears the close, the last one done takes it off', () => {
    const proxy = new Proxy();
    const first = recordAppClose(asProxy(proxy));
    const installed = proxy.close;
    const second = recordAppClose(asProxy(proxy));
    assert.equal(proxy.close, installed, 'no second layer');
    proxy.close();
    assert.deepEqual([first.closed(), second.closed(), proxy.calls.length], [true, true, 1]);
    first.stop();
    assert.equal(proxy.close, installed, 'still recorded for the second');
    second.stop();
    assert.equal(Object.hasOwn(proxy, 'close'), false);
  });

  it("records nothing, and changes nothing, on a proxy that owns its close (a test's spy, an accessor) or is frozen", () => {
    const own = new Proxy();
    const appOwn = () => 'own';
    own.close = appOwn;
    const onOwn = recordAppClose(asProxy(own));
    assert.equal(own.close, appOwn);
    own.close();
    assert.equal(onOwn.closed(), false);
    onOwn.stop();
    assert.equal(own.close, appOwn);

    const frozen = Object.freeze(new Proxy());
    const onFrozen = recordAppClose(asProxy(frozen));
    assert.equal(frozen.close(), 'closed');
    assert.equal(onFrozen.closed(), false);
    onFrozen.stop();

    const accessor = new Proxy();
    const get = () => () => 'accessor';
    Object.defineProperty(accessor, 'close', { get, configurable: true });
    const onAccessor = recordAppClose(asProxy(accessor));
    assert.equal(Object.getOwnPropertyDescriptor(accessor, 'close')?.get, get);
    onAccessor.stop();
    assert.equal(Object.getOwnPropertyDescriptor(accessor, 'close')?.get, get);
  });
});
