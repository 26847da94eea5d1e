import { expect, test } from '@playwright/test';
import { ADMIN, hydrated, MEMBER, signIn } from './helpers';

test('an admin searches, sorts and pages the members list, and the URL keeps the state', async ({ page }) => {
  await signIn(page, ADMIN.email);
  await page.getByRole('banner').getByRole('link', { name: 'Members' }).click();
  await expect(page).toHaveURL(/\/admin\/members$/);
  await expect(page).toHaveTitle(/^Members/);
  const table = page.getByRole('table', { name: 'Members' });
  await expect(table.getByRole('row')).toHaveCount(26); // the header and 25 members
  await hydrated(page);

  // Search as you type.
  const search = page.getByRole('searchbox', { name: 'Search members' });
  await search.fill('ann');
  await expect(page).toHaveURL(/\?q=ann$/);
  await expect(table.getByRole('cell', { name: MEMBER.email })).toBeVisible();
  for (const row of await table.locator('tbody tr').all()) {
    const name = (await row.locator('td').nth(1).innerText()).toLowerCase();
    const email = (await row.locator('td').nth(2).innerText()).toLowerCase();
    expect(name.split(' ').some((word) => word.startsWith('ann')) || email.startsWith('ann')).toBeTruthy();
  }
  // A reload keeps the search, in the box and in the results.
  await page.reload();
  await hydrated(page);
  await expect(search).toHaveValue('ann');
  await expect(table.getByRole('cell', { name: MEMBER.email })).toBeVisible();

  // Sort by email, then reverse it.
  await search.fill('');
  await expect(page).toHaveURL(/\/admin\/members$/);
  await table.getByRole('link', { name: 'Email' }).click();
  await expect(page).toHaveURL(/sort=email$/);
  await expect(table.getByRole('columnheader', { name: /Email/ })).toHaveAttribute('aria-sort', 'ascending');
  const firstAscending = await table.locator('tbody tr').first().locator('td').nth(2).innerText();
  await table.getByRole('link', { name: /Email/ }).click();
  await expect(page).toHaveURL(/sort=email&dir=desc$/);
  await expect(table.getByRole('columnheader', { name: /Email/ })).toHaveAttribute('aria-sort', 'descending');
  await expect(table.locator('tbody tr').first().locator('td').nth(2)).not.toHaveText(firstAscending);

  // Page forward and back.
  await expect(page.getByText('Page 1 of 3')).toBeVisible();
  await page.getByRole('link', { name: 'Next →' }).click();
  await expect(page).toHaveURL(/page=2&after=\d+$/);
  await expect(page.getByText('Page 2 of 3')).toBeVisible();
  await page.goBack();
  await expect(page.getByText('Page 1 of 3')).toBeVisible();

  // Filter by role.
  await page.getByLabel('Role').selectOption('super_user');
  await expect(page).toHaveURL(/role=super_user/);
  await expect(table.getByRole('cell', { name: ADMIN.email })).toBeVisible();
  for (const role of await table.locator('tbody tr td:nth-child(4)').allInnerTexts()) {
    expect(role).toBe('Super user');
  }
});

test('a member without admin access is told so, and has no Members link', async ({ page }) => {
  await signIn(page, MEMBER.email);
  await expect(page.getByRole('heading', { name: 'My account' })).toBeVisible();
  await expect(page.getByRole('banner').getByRole('link', { name: 'Members' })).toHaveCount(0);
  const response = await page.goto('/admin/members');
  expect(response?.status()).toBe(403);
  await expect(page.getByRole('heading', { name: 'Not allowed' })).toBeVisible();
  await expect(page.getByRole('table', { name: 'Members' })).toHaveCount(0);
});
