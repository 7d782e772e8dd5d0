/* Chinese edition: split a search query into the words the search index holds.
 *
 * Sphinx indexes the Chinese pages as words (segmented by jieba at build time) but splits a query
 * only at spaces and punctuation, so a phrase typed without spaces ("扩散模型的训练") would be one
 * word that no page has. Each run of Chinese characters is cut instead by forward maximum matching
 * against the index's own words: the longest indexed word at each position, then the next; a
 * character that starts no indexed word is dropped (the index holds no one-character words).
 * Loaded before searchtools.js, which then keeps this splitQuery instead of its default.
 */
var splitQuery = (query) => {
  // first the default splitter's rule (searchtools.js): split at anything but letters, digits, _
  const parts = query.split(/[^\p{Letter}\p{Number}_\p{Emoji_Presentation}]+/gu).filter((part) => part);
  const index = typeof Search !== "undefined" ? Search._index : null;
  if (!index) return parts;
  const has = Object.prototype.hasOwnProperty;
  const known = (word) => has.call(index.terms, word) || has.call(index.titleterms, word);
  const longest = 12; // longer than any indexed Chinese word
  const words = [];
  for (const part of parts) {
    for (const run of part.match(/\p{Script=Han}+|[^\p{Script=Han}]+/gu)) {
      if (!/\p{Script=Han}/u.test(run) || known(run)) {
        words.push(run);
        continue;
      }
      for (let start = 0; start < run.length; ) {
        let length = Math.min(longest, run.length - start);
        while (length > 1 && !known(run.slice(start, start + length))) length -= 1;
        if (length > 1) words.push(run.slice(start, start + length));
        start += length;
      }
    }
  }
  return words;
};
