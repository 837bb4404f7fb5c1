#pragma once
// Small SQLite helpers shared by the stores on SQLite (metadata, analytics, webhooks): a prepared
// statement wrapper, error mapping, numbered migrations and opaque keyset cursors.
#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/status.h"

namespace sw::sqlite {

// Prepared statements kept for reuse on hot paths, keyed by their SQL text (preparing costs more
// than running a short statement). Not thread-safe: use it under the lock that guards its
// connection, and clear() it before closing the connection.
class StmtCache {
 public:
  StmtCache() = default;
  ~StmtCache() { clear(); }
  StmtCache(const StmtCache&) = delete;
  StmtCache& operator=(const StmtCache&) = delete;
  // The statement for sql, prepared on first use; nullptr (rc says why) when it does not prepare.
  sqlite3_stmt* get(sqlite3* db, std::string_view sql, int& rc);
  void clear();

 private:
  // Transparent hash: get() looks up by string_view without building a string.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, sqlite3_stmt*, Hash, std::equal_to<>> stmts_;
};

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  // A cached statement: reset and its bindings cleared when this Stmt ends, not finalized.
  Stmt(StmtCache& cache, sqlite3* db, std::string_view sql) : cached_(true) { stmt_ = cache.get(db, sql, rc_); }
  ~Stmt() {
    if (!cached_) {
      sqlite3_finalize(stmt_);
    } else if (stmt_) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }
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
  bool cached_ = false;
};

// Unique/primary-key violations -> already_exists, foreign keys -> not_found, else internal.
Error dbError(sqlite3* db, const char* what);
Status exec(sqlite3* db, const char* sql);

// BEGIN IMMEDIATE ... COMMIT, rolled back unless commit() succeeded. With a cache, the three
// statements are prepared once.
class Transaction {
 public:
  explicit Transaction(sqlite3* db, StmtCache* cache = nullptr) : db_(db), cache_(cache) {
    began_ = static_cast<bool>(run("BEGIN IMMEDIATE"));
  }
  ~Transaction() {
    if (began_ && !done_) (void)run("ROLLBACK");
  }
  bool began() const { return began_; }
  Status commit() {
    auto st = run("COMMIT");
    done_ = static_cast<bool>(st);
    return st;
  }

 private:
  Status run(const char* sql);
  sqlite3* db_;
  StmtCache* cache_;
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
