#include "storage/backends/sqlite/sqlite_util.h"

#include <fmt/format.h>

#include "core/hex.h"

namespace sw::sqlite {

Error dbError(sqlite3* db, const char* what) {
  int ext = sqlite3_extended_errcode(db);
  if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return Error{Code::kAlreadyExists, fmt::format("{}: already exists", what), {}};
  }
  if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
    return Error{Code::kNotFound, fmt::format("{}: referenced row not found", what), {}};
  return Error{Code::kInternal, fmt::format("database {} failed: {}", what, sqlite3_errmsg(db)), {}};
}

Status exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    return fail(Code::kInternal, fmt::format("database exec failed: {}", msg));
  }
  return ok();
}

sqlite3_stmt* StmtCache::get(sqlite3* db, std::string_view sql, int& rc) {
  if (auto it = stmts_.find(sql); it != stmts_.end()) {
    rc = SQLITE_OK;
    return it->second;
  }
  sqlite3_stmt* stmt = nullptr;
  rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return nullptr;
  }
  stmts_.emplace(std::string(sql), stmt);
  return stmt;
}

void StmtCache::clear() {
  for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
  stmts_.clear();
}

Status Transaction::run(const char* sql) {
  if (!cache_) return exec(db_, sql);
  Stmt s(*cache_, db_, sql);
  if (s.step() != SQLITE_DONE) {
    return fail(Code::kInternal, fmt::format("database exec failed: {}", sqlite3_errmsg(db_)));
  }
  return ok();
}

namespace {

Status migrate(sqlite3* db, std::span<const char* const> migrations, const char* what) {
  if (auto st = exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"); !st) return st;
  int current = 0;
  {
    Stmt s(db, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
    if (s.step() == SQLITE_ROW) current = static_cast<int>(s.i64(0));
  }
  const int target = static_cast<int>(migrations.size());
  if (current > target) {
    return fail(Code::kUnavailable,
                fmt::format("{} schema version {} is newer than this binary supports ({})", what, current, target));
  }
  for (int v = current + 1; v <= target; ++v) {
    if (auto st = exec(db, "BEGIN IMMEDIATE"); !st) return st;
    auto st = exec(db, migrations[v - 1]);
    if (st) {
      Stmt s(db, "INSERT INTO schema_version(version) VALUES (?)");
      s.bind(1, std::int64_t{v});
      if (s.step() != SQLITE_DONE) st = std::unexpected(dbError(db, "migration"));
    }
    if (!st) {
      (void)exec(db, "ROLLBACK");
      return fail(Code::kInternal, fmt::format("{} schema migration {} failed: {}", what, v, st.error().message));
    }
    if (auto c = exec(db, "COMMIT"); !c) return c;
  }
  return ok();
}

}  // namespace

Result<sqlite3*> openDatabase(const std::string& path, bool sync_full, std::span<const char* const> migrations,
                              const char* what) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    auto err = fail(Code::kUnavailable, fmt::format("cannot open {} database {}: {}", what, path,
                                                    db ? sqlite3_errmsg(db) : "out of memory"));
    if (db) sqlite3_close_v2(db);
    return err;
  }
  sqlite3_busy_timeout(db, 5000);
  Status st = ok();
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON"}) {
    if (st) st = exec(db, pragma);
  }
  if (st) st = migrate(db, migrations, what);
  if (!st) {
    sqlite3_close_v2(db);
    return std::unexpected(st.error());
  }
  return db;
}

std::string makeCursor(const std::string& sort_key, const std::string& id) {
  return hexEncode(sort_key + '\x1f' + id);
}

Result<std::pair<std::string, std::string>> parseCursor(const std::string& cursor) {
  if (cursor.empty()) return std::pair<std::string, std::string>{};
  std::string raw;
  if (cursor.size() > 4096 || !hexDecode(cursor, raw))
    return fail(Code::kInvalidArgument, "malformed cursor", "cursor");
  auto sep = raw.find('\x1f');
  if (sep == std::string::npos) return fail(Code::kInvalidArgument, "malformed cursor", "cursor");
  return std::pair{raw.substr(0, sep), raw.substr(sep + 1)};
}

}  // namespace sw::sqlite
