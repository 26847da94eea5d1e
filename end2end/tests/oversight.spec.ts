import { APIRequestContext, expect, request as http, test } from '@playwright/test';
import { ADMIN, hydrated, PASSWORD, signedIn } from './helpers';

// Created by run.sh: a support engineer and a member only this test uses.
const SUPPORT = { email: 'sue@e2e.test', name: 'Sue Support' };
const MEMBER = { email: 'omar@e2e.test', name: 'Omar Member' };

async function token(request: APIRequestContext, email: string): Promise<string> {
  const response = await request.post('/api/v1/login', { data: { email, password: PASSWORD } });
  expect(response.status()).toBe(200);
  return (await response.json()).token;
}

/** Sue starts a session on behalf of Omar through the API; its token. (A context of
 * its own each time: alias_login also sets a cookie, which the next call would carry.) */
async function startOnBehalf(reason: string, baseURL?: string): Promise<string> {
  const request = await http.newContext({ baseURL });
  const admin = await token(request, ADMIN.email);
  const found = await request.get(`/api/v1/members?q=${encodeURIComponent(MEMBER.email)}`, {
    headers: { Authorization: `Bearer ${admin}` },
  });
  const memberId = (await found.json()).members[0].id;
  const sue = await token(request, SUPPORT.email);
  const started = await request.post('/api/v1/alias_login', {
    headers: { Authorization: `Bearer ${sue}` },
    data: { member_id: memberId, password: PASSWORD, reason },
  });
  expect(started.status()).toBe(200);
  const onBehalf = (await started.json()).token;
  await request.dispose();
  return onBehalf;
}

test('a super user sees live sessions on behalf update by themselves, ends one, and finds it in History', async ({ page, request, baseURL }) => {
  const first = await startOnBehalf('Ticket E2E-8', baseURL);
  await signedIn(page, ADMIN.email);
  await page.getByRole('link', { name: 'On behalf now' }).click();
  await expect(page).toHaveURL(/\/admin\/impersonations$/);
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'Sessions on behalf' })).toBeVisible();
  const live = page.getByRole('table', { name: 'Live sessions on behalf' });
  const row = live.getByRole('row').filter({ hasText: 'Ticket E2E-8' });
  await expect(row).toContainText(SUPPORT.name);
  await expect(row).toContainText(MEMBER.name);
  await expect(row).toContainText(/\d+ min \d\d s/);
  await page.screenshot({ path: '../docs/impersonations.png', fullPage: true });

  await row.getByRole('button', { name: /^End session on behalf/ }).click();
  await expect(row).toHaveCount(0);
  // The ended session acts as no one now.
  const after = await request.get('/api/v1/profile', { headers: { Authorization: `Bearer ${first}` } });
  expect(after.status()).toBe(409);
  expect((await after.json()).error.code).toBe('on_behalf_ended');

  // A session started elsewhere shows up without a reload (the list polls).
  const second = await startOnBehalf('Ticket E2E-9', baseURL);
  const next = live.getByRole('row').filter({ hasText: 'Ticket E2E-9' });
  await expect(next).toBeVisible({ timeout: 15_000 });

  await page.getByRole('tab', { name: 'History' }).click();
  const ended = page.getByRole('table', { name: 'Ended sessions on behalf' }).getByRole('row').filter({ hasText: 'Ticket E2E-8' });
  await expect(ended).toContainText('revoked');

  // Clean up: end the second one too.
  await page.getByRole('tab', { name: 'Live' }).click();
  await next.getByRole('button', { name: /^End session on behalf/ }).click();
  await expect(next).toHaveCount(0);
  const gone = await request.get('/api/v1/profile', { headers: { Authorization: `Bearer ${second}` } });
  expect(gone.status()).toBe(409);
});

test("the blade's Sessions lists a member's sessions, the one on their behalf included, and ends them all", async ({ page, request, baseURL }) => {
  const onBehalf = await startOnBehalf('Ticket E2E-10', baseURL);
  await signedIn(page, ADMIN.email);
  await page.goto(`/admin/members?q=${encodeURIComponent(MEMBER.email)}`);
  await hydrated(page);
  await page.getByRole('table', { name: 'Members' }).getByRole('link', { name: MEMBER.name, exact: true }).click();
  const blade = page.getByRole('dialog', { name: 'User information' });
  await blade.getByRole('button', { name: 'Sessions' }).click();
  const table = blade.getByRole('table', { name: "The member's sessions" });
  await expect(table.getByRole('row').filter({ hasText: `on behalf, by ${SUPPORT.name}` })).toBeVisible();
  await page.screenshot({ path: '../docs/blade-sessions.png' });
  await blade.getByRole('button', { name: 'End all sessions' }).click();
  await expect(blade.getByText('No live sessions.')).toBeVisible();
  const gone = await request.get('/api/v1/profile', { headers: { Authorization: `Bearer ${onBehalf}` } });
  expect(gone.status()).toBe(409);
});
