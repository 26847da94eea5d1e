//! `behalf create-member` and `behalf init-admin`.

use app::{
    audit_action::AuditAction,
    members::directory::{count_with_role, create_member, NewMember},
    password::{hasher::PasswordHasher, Password},
    role::Role,
};

use crate::{
    cli::{command_record, describe, CliResult},
    config::{CreateMemberArgs, InitAdminArgs},
    seed::first_user::create_super_user,
    startup::open_database,
};

pub async fn create_member_command(database_url: &str, args: CreateMemberArgs) -> CliResult<i64> {
    let db = open_database(database_url).await?;
    let hasher = PasswordHasher::new(1);
    let name = args
        .name
        .unwrap_or_else(|| args.email.split('@').next().unwrap_or("").trim().to_string());
    let new = NewMember {
        email: args.email,
        display_name: name,
        role: args.role,
        admin_access: args.role.default_admin_access(),
        login_enabled: true,
    };
    let id = create_member(
        &db,
        &hasher,
        app::clock::system_now(),
        new,
        Password::new(args.password),
        Some(command_record(AuditAction::MemberCreated, "create-member")),
    )
    .await
    .map_err(describe)?;
    db.close().await;
    Ok(id)
}

/// Creates a super user with a random password when there is none. Returns the
/// credentials to print, or None when a super user already exists.
pub async fn init_admin_command(
    database_url: &str,
    args: InitAdminArgs,
) -> CliResult<Option<(String, String)>> {
    let db = open_database(database_url).await?;
    if count_with_role(&db, Role::SuperUser).await.map_err(describe)? > 0 {
        db.close().await;
        return Ok(None);
    }
    let password = create_super_user(&db, app::clock::system_now(), &args.email, "init-admin")
        .await
        .map_err(describe)?;
    db.close().await;
    Ok(Some((args.email, password)))
}
