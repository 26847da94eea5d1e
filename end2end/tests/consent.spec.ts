import { expect, Page, test } from '@playwright/test';
import { hydrated, PASSWORD, signedIn } from './helpers';

// Created by run.sh: a support engineer and two members only these tests use (one asks
// first; the other keeps the default, and grants, and ends a session on her behalf).
const SUPPORT = { email: 'sid@e2e.test', name: 'Sid Support' };
const ASKS_FIRST = { email: 'cleo@e2e.test', name: 'Cleo Consent' };
const MEMBER = { email: 'mia@e2e.test', name: 'Mia Member' };

const SOMEONE_IN = 'Someone is signed in on your behalf';

async function memberId(page: Page, who: { email: string; name: string }): Promise<string> {
  await page.goto(`/admin/members?q=${encodeURIComponent(who.email)}`);
  await hydrated(page);
  const link = page.getByRole('table', { name: 'Members' }).getByRole('link', { name: who.name, exact: true });
  const href = await link.getAttribute('href');
  return href!.match(/\/admin\/members\/(\d+)/)![1];
}

/** The member's Access page, loaded afresh. */
async function openAccess(page: Page) {
  await page.goto('/account/access');
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'Access', exact: true })).toBeVisible();
}

test('a member who asks first approves a request from the blade, and then the login on behalf works', async ({ browser }) => {
  // Cleo chooses to be asked first.
  const memberContext = await browser.newContext();
  const member = await memberContext.newPage();
  await signedIn(member, ASKS_FIRST.email);
  await openAccess(member);
  await member.getByRole('radio', { name: 'Ask me first' }).check();
  await member.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(member.getByText('Saved.')).toBeVisible();
  await openAccess(member);
  await expect(member.getByRole('radio', { name: 'Ask me first' })).toBeChecked();

  // Sid's role alone is not enough now: the blade offers Request access instead.
  const supportContext = await browser.newContext();
  const support = await supportContext.newPage();
  await signedIn(support, SUPPORT.email);
  const id = await memberId(support, ASKS_FIRST);
  await support.goto(`/admin/members/${id}`);
  await hydrated(support);
  const blade = support.getByRole('dialog', { name: 'User information' });
  await expect(blade.getByText('Asks first', { exact: true })).toBeVisible();
  await expect(blade.getByRole('button', { name: 'Login on behalf' })).toHaveCount(0);
  await blade.getByRole('button', { name: 'Request access' }).click();
  await blade.getByLabel('Reason').fill('Ticket C-12: the invoice address');
  await blade.getByLabel('Mode').selectOption({ label: 'View only' });
  await blade.getByLabel('Duration').selectOption({ label: '1 hour' });
  await blade.getByRole('button', { name: 'Send request' }).click();
  const waiting = "Request sent — waiting for the member's answer.";
  await expect(blade.getByText(waiting)).toBeVisible();
  await expect(blade.getByRole('button', { name: 'Request access' })).toHaveCount(0);
  // The blade remembers the request.
  await support.reload();
  await hydrated(support);
  await expect(blade.getByText(waiting)).toBeVisible();

  // Cleo approves it on her Access page: a grant for Sid appears.
  await openAccess(member);
  const request = member.getByRole('table', { name: 'Requests' }).getByRole('row').filter({ hasText: SUPPORT.name });
  await expect(request).toContainText('Ticket C-12: the invoice address');
  await request.getByRole('button', { name: 'Approve', exact: true }).click();
  await expect(request).toContainText('Approved');
  await expect(request.getByRole('button', { name: 'Approve', exact: true })).toHaveCount(0);
  await expect(request.getByRole('button', { name: 'Deny', exact: true })).toHaveCount(0);
  const grant = member.getByRole('table', { name: 'Grants' }).getByRole('row').filter({ hasText: SUPPORT.name });
  await expect(grant).toContainText('View only');

  // Now Sid may log in on Cleo's behalf.
  await support.reload();
  await hydrated(support);
  const [popup] = await Promise.all([
    supportContext.waitForEvent('page'),
    blade.getByRole('button', { name: 'Login on behalf' }).click(),
  ]);
  await popup.waitForLoadState();
  await expect(popup).toHaveURL(new RegExp(`/on-behalf/${id}`));
  await hydrated(popup);
  await popup.getByLabel('Your password').fill(PASSWORD);
  await popup.getByLabel('Reason').fill('Ticket C-12: the invoice address');
  await popup.getByRole('button', { name: 'Login on behalf' }).click();
  const banner = popup.getByRole('region', { name: 'Impersonation banner' });
  await expect(banner).toContainText(`You, ${SUPPORT.name}, are viewing as ${ASKS_FIRST.name}`);

  await banner.getByRole('button', { name: 'Leave impersonation' }).click();
  await expect(popup.getByRole('region', { name: 'Impersonation banner' })).toHaveCount(0);
  await supportContext.close();
  await memberContext.close();
});

test('a member grants any support engineer view-only access for an hour, sees it listed, and revokes it', async ({ page }) => {
  await signedIn(page, MEMBER.email);
  await page.getByRole('navigation', { name: 'My account' }).getByRole('link', { name: 'Access', exact: true }).click();
  await expect(page).toHaveURL(/\/account\/access$/);
  await expect(page.getByRole('heading', { name: 'Access', exact: true })).toBeVisible();
  await hydrated(page);

  await page.getByLabel('Grantee').selectOption({ label: 'Any support engineer' });
  await page.getByLabel('Mode').selectOption({ label: 'View only' });
  await page.getByLabel('Duration').selectOption({ label: '1 hour' });
  await page.getByRole('button', { name: 'Grant access' }).click();
  const row = page.getByRole('table', { name: 'Grants' }).getByRole('row').filter({ hasText: 'Any support engineer' });
  await expect(row).toHaveCount(1);
  await expect(row).toContainText('View only');

  await row.getByRole('button', { name: 'Revoke' }).click();
  await expect(row).toHaveCount(0);
  await expect(page.getByText('You have not granted access to anyone.')).toBeVisible();
});

test('the member sees who is signed in on their behalf, ends it now, and the actor is back in their own session', async ({ browser }) => {
  // Mia is on her own pages, listening for sessions on her behalf.
  const memberContext = await browser.newContext();
  const member = await memberContext.newPage();
  const memberStream = member.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/profile/events');
  await signedIn(member, MEMBER.email);
  await hydrated(member);
  await memberStream;
  const region = member.getByRole('region', { name: SOMEONE_IN });
  await expect(region).toHaveCount(0);

  // Sid logs in on her behalf.
  const actorContext = await browser.newContext();
  const actor = await actorContext.newPage();
  await signedIn(actor, SUPPORT.email);
  const id = await memberId(actor, MEMBER);
  await actor.goto(`/on-behalf/${id}`);
  await hydrated(actor);
  await actor.getByLabel('Your password').fill(PASSWORD);
  await actor.getByLabel('Reason').fill('ticket 4711');
  const actorStream = actor.waitForResponse((r) => new URL(r.url()).pathname === '/api/on-behalf/events');
  await actor.getByRole('button', { name: 'Login on behalf' }).click();
  const banner = actor.getByRole('region', { name: 'Impersonation banner' });
  await expect(banner).toContainText(`You, ${SUPPORT.name}, are viewing as ${MEMBER.name}`);
  await actorStream;

  // Mia's page shows it without a reload, and she ends it.
  await expect(region).toBeVisible({ timeout: 20_000 });
  await expect(region).toContainText(`${SUPPORT.name} (support) is signed in on your behalf since`);
  await expect(region).toContainText('reason: ticket 4711');
  await region.getByRole('button', { name: 'End it now' }).click();
  await expect(region).toHaveCount(0);

  // Sid's window goes back to his own session by itself, and says why.
  await expect(banner).toHaveCount(0, { timeout: 20_000 });
  await expect(actor.getByText(/ended/i).first()).toBeVisible();
  await expect(actor.getByRole('banner').getByText(SUPPORT.name)).toBeVisible();

  // Mia was told, on her Access page.
  await openAccess(member);
  const notice = member
    .getByRole('region', { name: 'Notices', exact: true })
    .getByRole('listitem')
    .filter({ hasText: `${SUPPORT.name} signed in on your behalf — reason: ticket 4711` })
    .first();
  await expect(notice).toBeVisible();
  await expect(member.getByRole('region', { name: SOMEONE_IN })).toHaveCount(0);
  await actorContext.close();
  await memberContext.close();
});
