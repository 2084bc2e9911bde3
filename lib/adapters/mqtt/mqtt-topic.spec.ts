import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { filterProblem, topicMatches, topicNameProblem } from './mqtt-topic.js';

describe('MQTT topics', () => {
  it('matches filters level by level, with + for one level and # for the rest', () => {
    assert.equal(topicMatches('orders/+/created', 'orders/eu/created'), true);
    assert.equal(topicMatches('orders/+/created', 'orders/eu/west/created'), false);
    assert.equal(topicMatches('orders/#', 'orders'), true, '# also matches the parent level');
    assert.equal(topicMatches('orders/#', 'orders/eu/created'), true);
    assert.equal(topicMatches('orders/eu', 'orders/eu/created'), false);
    assert.equal(topicMatches('orders/eu/created', 'orders/eu'), false);
    assert.equal(topicMatches('#', 'anything/at/all'), true);
  });

  it('never matches a $ topic with a leading wildcard, as the broker never sends one', () => {
    assert.equal(topicMatches('#', '$connection-health/beat'), false);
    assert.equal(topicMatches('+/beat', '$connection-health/beat'), false);
    assert.equal(topicMatches('$SYS/#', '$SYS/broker/uptime'), true);
  });

  it('reads a shared subscription as its filter', () => {
    assert.equal(topicMatches('$share/workers/jobs/+', 'jobs/42'), true);
    assert.equal(topicMatches('$share/workers/jobs/+', 'other/42'), false);
  });

  it('says what is wrong with a filter or a topic name', () => {
    assert.equal(filterProblem('a/+/b/#'), undefined);
    assert.match(filterProblem('a/#/b') ?? '', /#/);
    assert.match(filterProblem('a/b+') ?? '', /\+/);
    assert.match(filterProblem('') ?? '', /empty/);
    assert.match(filterProblem('$share//x') ?? '', /share/);
    assert.equal(topicNameProblem('$connection-health/beat'), undefined);
    assert.match(topicNameProblem('a/+') ?? '', /wildcard/);
  });
});
