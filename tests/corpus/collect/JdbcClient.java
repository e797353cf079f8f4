// pgjdbc: connection setup, DatabaseMetaData, server-prepared statements, cursor fetch.
import java.io.FileWriter;
import java.sql.*;
import java.util.Properties;

public class JdbcClient {
    static final String C = "pgjdbc";

    static void step(String what) throws Exception {
        Thread.sleep(30);
        try (FileWriter w = new FileWriter(System.getenv("MARKERS"), true)) {
            w.write(String.format("%.6f\t%s\t%s%n", System.currentTimeMillis() / 1000.0, C, what));
        }
        Thread.sleep(30);
    }

    static void drain(ResultSet rs) throws SQLException {
        try (rs) { while (rs.next()) { } }
    }

    public static void main(String[] args) throws Exception {
        String port = System.getenv().getOrDefault("PORT", "55432");
        Properties p = new Properties();
        p.setProperty("user", "agent_wasser");
        p.setProperty("password", "wasser");
        p.setProperty("ApplicationName", C);
        step("connect");
        Connection conn = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + port + "/crm", p);

        DatabaseMetaData md = conn.getMetaData();
        step("getSchemas");
        drain(md.getSchemas());
        step("getTables");
        drain(md.getTables(null, "stadtwerke", "%", new String[] {"TABLE", "VIEW"}));
        step("getColumns");
        drain(md.getColumns(null, "stadtwerke", "customers", "%"));
        step("getPrimaryKeys");
        drain(md.getPrimaryKeys(null, "stadtwerke", "customers"));
        step("getImportedKeys");
        drain(md.getImportedKeys(null, "stadtwerke", "tickets"));
        step("getExportedKeys");
        drain(md.getExportedKeys(null, "stadtwerke", "customers"));
        step("getIndexInfo");
        drain(md.getIndexInfo(null, "stadtwerke", "customers", false, true));
        step("getTypeInfo");
        drain(md.getTypeInfo());
        step("getDatabaseProductVersion / getUserName");
        md.getDatabaseProductVersion();
        md.getUserName();

        step("Statement without parameters");
        try (Statement st = conn.createStatement()) {
            drain(st.executeQuery("SELECT customer_no, name FROM stadtwerke.customers ORDER BY customer_no"));
        }

        step("PreparedStatement x7 (switches to server-prepared)");
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT name, city, birth_date FROM stadtwerke.customers WHERE customer_no = ? AND city <> ?")) {
            for (int i = 0; i < 7; i++) {
                ps.setInt(1, 1001 + (i % 5));
                ps.setString(2, "Nirgendwo");
                drain(ps.executeQuery());
            }
        }
        step("PreparedStatement with date/numeric/bool parameters");
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT reading_id FROM stadtwerke.meter_readings WHERE read_on >= ? AND cubic_m > ? AND estimated = ?")) {
            ps.setDate(1, Date.valueOf("2026-01-01"));
            ps.setBigDecimal(2, new java.math.BigDecimal("50.00"));
            ps.setBoolean(3, false);
            drain(ps.executeQuery());
        }

        step("transaction with insert + getGeneratedKeys");
        conn.setAutoCommit(false);
        try (PreparedStatement ps = conn.prepareStatement(
                "INSERT INTO stadtwerke.tickets (customer_no, subject, note) VALUES (?, ?, ?)",
                Statement.RETURN_GENERATED_KEYS)) {
            ps.setInt(1, 1004);
            ps.setString(2, "Rückruf");
            ps.setString(3, "pgjdbc");
            ps.executeUpdate();
            drain(ps.getGeneratedKeys());
        }
        conn.commit();
        step("batch insert");
        try (PreparedStatement ps = conn.prepareStatement(
                "INSERT INTO stadtwerke.tickets (customer_no, subject, note) VALUES (?, ?, ?)")) {
            for (int i = 0; i < 3; i++) {
                ps.setInt(1, 1001 + i);
                ps.setString(2, "Sammel");
                ps.setString(3, "pgjdbc batch " + i);
                ps.addBatch();
            }
            ps.executeBatch();
        }
        conn.commit();

        step("setFetchSize cursor fetch in transaction");
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT reading_id, customer_no, read_on, cubic_m FROM stadtwerke.meter_readings WHERE customer_no > ?")) {
            ps.setFetchSize(2);
            ps.setInt(1, 1000);
            drain(ps.executeQuery());
        }
        step("rollback");
        try (Statement st = conn.createStatement()) {
            st.executeUpdate("UPDATE stadtwerke.tickets SET status = 'closed' WHERE note = 'pgjdbc'");
        }
        conn.rollback();
        step("savepoint");
        Savepoint sp = conn.setSavepoint();
        try (Statement st = conn.createStatement()) {
            st.executeUpdate("UPDATE stadtwerke.tickets SET status = 'closed' WHERE note = 'pgjdbc'");
        }
        conn.rollback(sp);
        conn.commit();
        conn.setAutoCommit(true);

        step("ResultSetMetaData");
        try (Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery("SELECT c.customer_no, c.name, c.birth_date, r.reading_id, r.cubic_m, r.estimated "
                     + "FROM stadtwerke.customers c JOIN stadtwerke.meter_readings r USING (customer_no)")) {
            ResultSetMetaData m = rs.getMetaData();
            for (int i = 1; i <= m.getColumnCount(); i++) {
                m.getColumnName(i);
                m.getColumnTypeName(i);
                m.getColumnClassName(i);
                m.getTableName(i);
                m.getSchemaName(i);
                m.unwrap(org.postgresql.PGResultSetMetaData.class).getBaseColumnName(i);
                m.isNullable(i);
                m.isAutoIncrement(i);
                m.getPrecision(i);
            }
            while (rs.next()) { }
        }

        step("setTransactionIsolation / setReadOnly");
        conn.setTransactionIsolation(Connection.TRANSACTION_REPEATABLE_READ);
        conn.setReadOnly(true);
        conn.setAutoCommit(false);
        try (Statement st = conn.createStatement()) {
            drain(st.executeQuery("SELECT count(*) FROM stadtwerke.tickets"));
        }
        conn.commit();
        conn.setAutoCommit(true);
        conn.setReadOnly(false);
        conn.setTransactionIsolation(Connection.TRANSACTION_READ_COMMITTED);

        step("isValid");
        conn.isValid(2);

        step("close");
        conn.close();
    }
}
