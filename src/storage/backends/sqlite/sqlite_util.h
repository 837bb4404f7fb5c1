#pragma once
// Small SQLite helpers shared by the stores on SQLite (metadata, analytics, webhooks): a prepared
// statement wrapper, error mapping, numbered migrations and opaque keyset cursors.
#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "core/status.h"

namespace sw::sqlite {

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Stmt& bindDouble(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  Stmt& bindNull(int i) {
    sqlite3_bind_null(stmt_, i);
    return *this;
  }
  int step() { return rc_ = sqlite3_step(stmt_); }
  std::string text(int col) const {
    auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, col)) : std::string();
  }
  std::int64_t i64(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::optional<std::int64_t> optI64(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return sqlite3_column_int64(stmt_, col);
  }
  double dbl(int col) const { return sqlite3_column_double(stmt_, col); }
  bool isNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int rc() const { return rc_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

// Unique/primary-key violations -> already_exists, foreign keys -> not_found, else internal.
Error dbError(sqlite3* db, const char* what);
Status exec(sqlite3* db, const char* sql);

// BEGIN IMMEDIATE ... COMMIT, rolled back unless commit() succeeded.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) { began_ = static_cast<bool>(exec(db_, "BEGIN IMMEDIATE")); }
  ~Transaction() {
    if (began_ && !done_) (void)exec(db_, "ROLLBACK");
  }
  bool began() const { return began_; }
  Status commit() {
    auto st = exec(db_, "COMMIT");
    done_ = static_cast<bool>(st);
    return st;
  }

 private:
  sqlite3* db_;
  bool began_ = false;
  bool done_ = false;
};

// Opens (creating) a database in WAL mode with foreign keys on and applies the numbered
// migrations not applied yet, each in its own transaction (table schema_version). `what` names
// the database in errors. The caller owns the handle (sqlite3_close_v2).
Result<sqlite3*> openDatabase(const std::string& path, bool sync_full, std::span<const char* const> migrations,
                              const char* what);

// Opaque keyset cursor: hex of "sort_key \x1f id".
std::string makeCursor(const std::string& sort_key, const std::string& id);
Result<std::pair<std::string, std::string>> parseCursor(const std::string& cursor);

}  // namespace sw::sqlite
