// The city's evacuation information as the crisis office works it: a drafter composes and previews it, a
// second person approves it, it is sent with live progress; the same person cannot approve their own; an
// approval is stopped inside its 10-second window; an approver withdraws a sent alert (time to the first
// message at the LINE stand-in is printed); a drill reaches only the drill audience.
import { assert, base, login, newPage, run, screenshot } from './lib.mjs';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const [drafter, approver, approver2, password] =
  [env('SONAE_DRAFTER'), env('SONAE_APPROVER'), env('SONAE_APPROVER_2'), env('SONAE_PASSWORD')];
const [d1, d2, expected] = [env('SONAE_DISTRICT_1'), env('SONAE_DISTRICT_2'), env('SONAE_EXPECTED')];
const sandbox = env('SANDBOX_URL');
const probe = env('SANDBOX_PROBE_USER');
const other = env('SANDBOX_OTHER_USER');

/** What a resident received at the stand-in. */
async function received(user) {
  const r = await fetch(`${sandbox}/sandbox/users/${user}/messages`);
  return (await r.json()).messages;
}

/** A resident's action in LINE (tap, text, location), sent by the stand-in to the daemon's webhook. */
async function act(user, event) {
  const r = await fetch(`${sandbox}/sandbox/users/${user}/events`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event),
  });
  assert.ok(r.ok, `event ${JSON.stringify(event)}: ${r.status}`);
}

/** The postback data of the button labelled `label` in the messages a resident received. */
async function buttonData(user, label) {
  for (const m of await received(user)) {
    const found = [];
    JSON.stringify(m.message, (k, v) => {
      if (v && v.type === 'postback' && v.label === label) found.push(v.data);
      return v;
    });
    if (found.length) return found[0];
  }
  throw new Error(`${user} has no button ${label}`);
}

async function logout(page) {
  await page.getByRole('button', { name: 'ログアウト' }).click();
  await page.waitForLoadState('load');
}

/** Composes an 避難指示 (洪水) for the two districts and returns the new alert's id. */
async function draft(page, text, { useMap = false } = {}) {
  await page.goto(`${base}/console/alerts`);
  await page.getByRole('link', { name: '新しい避難情報を作成する' }).click();
  await page.getByLabel('警戒レベル4　避難指示').check();
  await page.getByLabel('対象の災害').selectOption({ label: '洪水' });
  await page.locator('details', { hasText: '中央区全域' }).locator('summary').click();
  await page.locator(`input[name="district"][value="${d1}"]`).check();
  if (useMap) {
    // The second district by clicking it on the map: the map toggles the list's checkbox.
    const polygon = page.locator(`path.d-${d2}`);
    await polygon.waitFor({ state: 'attached', timeout: 30000 });
    await polygon.dispatchEvent('click');
    assert.ok(await page.locator(`input[name="district"][value="${d2}"]`).isChecked(), 'map click selects');
    assert.match(await page.locator('#map-count').innerText(), /2 地区を選択中/);
    await screenshot(page, 'console-alert-map');
  } else {
    await page.locator(`input[name="district"][value="${d2}"]`).check();
  }
  await page.getByLabel(/補足/).fill(text);
  await page.getByRole('button', { name: '下書きを保存してプレビューする' }).click();
  await page.waitForLoadState('load');
  const m = new URL(page.url()).pathname.match(/^\/console\/alerts\/(\d+)$/);
  assert.ok(m, `on the alert's page: ${page.url()}`);
  return m[1];
}

async function status(page) {
  return (await page.locator('#alert-status').innerText()).trim();
}

async function waitFor(what, f, ms = 40000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await f()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

await run('alerts', async (browser, step) => {
  const page = await newPage(browser);

  step('drafter composes and previews');
  await login(page, drafter, password);
  const first = await draft(page, '豊平川の水位が上がっています。', { useMap: true });
  assert.equal(await status(page), '下書き');
  assert.equal((await page.locator('#total-recipients').innerText()).trim(), expected);
  const phone = page.frameLocator('iframe.phone');
  const shown = await phone.locator('body').innerText();
  assert.ok(shown.includes('避難指示') && shown.includes('警戒レベル４'), shown);
  assert.ok(shown.includes('豊平川の水位が上がっています。'), shown);
  assert.match(await page.locator('pre.json').textContent(), /"type": "flex"/);
  await screenshot(page, 'console-alert-preview');

  step('drafter submits; cannot approve');
  await page.getByRole('button', { name: '承認を依頼する' }).click();
  await page.waitForLoadState('load');
  assert.equal(await status(page), '承認待ち');
  assert.equal(await page.getByRole('button', { name: '承認して送信する' }).count(), 0);
  await logout(page);

  step('an approver cannot approve their own draft, even by posting the form');
  await login(page, approver, password);
  const own = await draft(page, '自分の下書き');
  await page.getByRole('button', { name: '承認を依頼する' }).click();
  await page.waitForLoadState('load');
  assert.match(await page.locator('main').innerText(), /自分が作成した避難情報は承認できません/);
  const csrf = await page.locator('input[name="csrf"]').first().inputValue();
  const forged = await page.request.post(`${base}/console/alerts/${own}/approve`, {
    form: { csrf, confirm: 'yes' },
  });
  assert.equal(forged.status(), 403);
  assert.match(await forged.text(), /自分が作成した避難情報は承認できません/);
  await page.goto(`${base}/console/alerts/${own}`);
  assert.equal(await status(page), '承認待ち');

  step('a second person approves; countdown; sent with progress');
  await page.goto(`${base}/console/alerts/${first}`);
  await page.getByLabel(/内容と対象地区/).check();
  await page.getByRole('button', { name: '承認して送信する' }).click();
  await page.waitForLoadState('load');
  assert.equal(await status(page), '承認済み（送信待ち）');
  assert.match(await page.locator('.countdown').innerText(), /送信まで \d+ 秒/);
  await screenshot(page, 'console-alert-countdown');
  await waitFor('sent', async () => (await status(page).catch(() => '')) === '送信済み');
  await waitFor('all delivered', async () =>
    ((await page.locator('#progress-sent').innerText().catch(() => '')) === expected));
  step('residents answer with the buttons; staff see it per district and follow up');
  await act(probe, { type: 'postback', data: await buttonData(probe, '助けが必要') });
  await waitFor('the acknowledgement', async () =>
    (await received(probe)).some((m) => JSON.stringify(m.message).includes('「助けが必要」と受け付け')));
  await act(probe, { type: 'text', text: '足をけがして動けません。2階にいます。' });
  await act(probe, { type: 'location', latitude: 43.0432, longitude: 141.3183, title: '自宅', address: '札幌市中央区' });
  await act(other, { type: 'postback', data: await buttonData(other, '避難しました') });
  await page.getByRole('link', { name: '安否' }).click();
  await waitFor('the counts', async () => {
    await page.reload();
    return (await page.locator('#total-help').innerText()) === '1'
      && (await page.locator('#total-evacuated').innerText()) === '1';
  });
  // The map shades the district that asked for help red, the one that evacuated green.
  await waitFor('the choropleth', async () =>
    (await page.locator(`path.d-${d1}`).getAttribute('fill').catch(() => null)) === '#d32f2f'
    && (await page.locator(`path.d-${d2}`).getAttribute('fill').catch(() => null)) === '#43a047');
  const helpRow = page.locator('#help-list tr', { hasText: '足をけがして動けません' });
  assert.equal(await helpRow.getByRole('link', { name: '地図' }).count(), 1);
  await screenshot(page, 'console-safety');
  await helpRow.getByRole('button', { name: '対応中にする' }).click();
  await page.waitForLoadState('load');
  const again = page.locator('#help-list tr', { hasText: '足をけがして動けません' });
  assert.match(await again.innerText(), /対応中/);
  await again.getByLabel('本人への連絡').fill('救助隊が向かっています。そのままお待ちください。');
  await again.getByRole('button', { name: 'LINE で送る' }).click();
  await page.waitForLoadState('load');
  await waitFor('the staff message at the resident', async () =>
    (await received(probe)).some((m) => JSON.stringify(m.message).includes('救助隊が向かっています')));
  await logout(page);

  step('cancel inside the window');
  await login(page, approver2, password);
  await page.goto(`${base}/console/alerts/${own}`);
  await page.getByLabel(/内容と対象地区/).check();
  await page.getByRole('button', { name: '承認して送信する' }).click();
  await page.waitForLoadState('load');
  await page.getByRole('button', { name: '送信を取り消す' }).click();
  await page.waitForLoadState('load');
  assert.equal(await status(page), '取り消し済み（未送信）');
  await new Promise((r) => setTimeout(r, 12000));
  await page.reload();
  assert.equal(await status(page), '取り消し済み（未送信）');

  step('withdraw the sent alert; measure until the stand-in has it');
  await page.goto(`${base}/console/alerts`);
  const row = page.locator('tr', { hasText: '避難指示（洪水）2地区' }).filter({ has: page.locator('form.correct') }).first();
  await row.getByLabel('取消').check();
  const t0 = Date.now();
  await row.getByRole('button', { name: '訂正・取消を送信する' }).click();
  await waitFor('the withdrawal at the stand-in', async () => {
    const r = await fetch(`${sandbox}/sandbox/users/${probe}/messages`);
    const j = await r.json();
    return j.messages.some((m) => JSON.stringify(m.message).includes('【取消】'));
  }, 60000);
  console.log(`[alerts] correction latency: ${Date.now() - t0} ms`);
  await page.waitForLoadState('load');

  step('drill: only the drill audience, marked');
  await page.goto(`${base}/console/alerts`);
  await page.getByRole('button', { name: '訓練を開始する' }).click();
  await page.waitForLoadState('load');
  assert.match(await page.locator('.drill-banner').innerText(), /訓練中/);
  assert.ok(await page.locator('body.drill').count() === 1);
  const drillAlert = await draft(page, '訓練です');
  assert.match(await page.locator('main').innerText(), /訓練中のため/);
  await screenshot(page, 'console-drill');
  await page.getByRole('button', { name: '承認を依頼する' }).click();
  await page.waitForLoadState('load');
  await logout(page);
  await login(page, approver, password);
  assert.match(await page.locator('.drill-banner').innerText(), /訓練中/);
  await page.goto(`${base}/console/alerts/${drillAlert}`);
  await page.getByLabel(/内容と対象地区/).check();
  await page.getByRole('button', { name: '承認して送信する' }).click();
  await page.waitForLoadState('load');
  await waitFor('drill sent', async () => (await status(page).catch(() => '')) === '送信済み');
  await page.goto(`${base}/console/alerts`);
  await page.getByRole('button', { name: '訓練を終了する' }).click();
  await page.waitForLoadState('load');
  assert.equal(await page.locator('.drill-banner').count(), 0);
  await logout(page);
});
